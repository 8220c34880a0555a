from chalicelib.errors import NoQgisProject, TooManyJobs
from chalicelib.http import outputs as out
from chalicelib.http.pagination import json_text_response, paginate
from chalicelib.http.request_data import body, query
from chalicelib.http.routing import Doc, Router
from chalicelib.http.serializers import job_json, job_report_text
from chalicelib.services import jobs
from chalicelib.services.inputs import JobCreate, JobListQuery

router = Router(__name__)


@router.route("/jobs/", methods=["GET"], doc=Doc("A project's jobs, oldest first", returns=list[out.JobOut],
                                                query=JobListQuery, paginated=True))
def list_jobs(caller):
    request = router.request
    items = jobs.list_jobs(caller, query(request, JobListQuery))
    return paginate(request, items, lambda page: [job_json(job) for job in page])


@router.route("/jobs/", methods=["POST"], doc=Doc(
    "Start a job", returns=out.JobReportOut, status=201, body=JobCreate, errors=(NoQgisProject, TooManyJobs),
    other_responses={200: "The job of that type already waiting (for a `package` without `force`, "
                          "also one running): nothing was created"}))
def create_job(caller):
    request = router.request
    job, created = jobs.create(caller, body(request, JobCreate))
    report = jobs.JobReport(job, None, None)
    return json_text_response(job_report_text(report), status_code=201 if created else 200)


@router.route("/jobs/{job_id}/", methods=["GET"],
              doc=Doc("A job, with its feedback and log", returns=out.JobReportOut))
def get_job(caller, job_id):
    return json_text_response(job_report_text(jobs.get_job(caller, job_id)))
