from chalicelib.errors import InvalidJob
from chalicelib.http import outputs as out
from chalicelib.http.handlers.downloads import download_doc, download_request, download_response
from chalicelib.http.pagination import json_text_response
from chalicelib.http.routing import Doc, Router
from chalicelib.http.serializers import package_text
from chalicelib.rules.permissions import Action
from chalicelib.services import packages, projects

router = Router(__name__)


@router.route("/packages/{project_id}/latest/",
              doc=Doc("The last package that succeeded", returns=out.PackageOut, errors=(InvalidJob,)))
def latest_package(caller, project_id):
    project, _ = projects.project_for(caller, project_id, Action.READ_PACKAGE)
    return json_text_response(package_text(packages.latest(project)))


@router.file_route("/packages/{project_id}/latest/files/", doc=download_doc("Download a file of the package"))
def download_package_file(caller, project_id, filename):
    request = router.request
    project, _ = projects.project_for(caller, project_id, Action.READ_PACKAGE)
    return download_response(packages.serve(project, filename, download_request(request)))
