from chalice import Response

from .. import auth, jobs
from ..inputs import JobCreate, JobListQuery
from ..pagination import paginate
from ..request_data import body, query
from ..routing import Router
from ..serializers import job_json, job_report_json

router = Router(__name__)


@router.route("/jobs/", methods=["GET"])
def list_jobs():
    request = router.request
    caller = auth.require_caller(request)
    items = jobs.list_jobs(caller, query(request, JobListQuery))
    return paginate(request, items, lambda page: [job_json(job) for job in page])


@router.route("/jobs/", methods=["POST"])
def create_job():
    request = router.request
    caller = auth.require_caller(request)
    job, created = jobs.create(caller, body(request, JobCreate))
    report = jobs.JobReport(job, None, None)
    return Response(body=job_report_json(report), status_code=201 if created else 200)


@router.route("/jobs/{job_id}/", methods=["GET"])
def get_job(job_id):
    caller = auth.require_caller(router.request)
    return job_report_json(jobs.get_job(caller, job_id))
