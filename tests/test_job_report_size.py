"""Answers that carry a job's report stay far below what Lambda can answer (6 MB) whatever the
project: a package job of an 800-layer project reports about 8 MB (every layer with its fields,
before and after packaging, in `steps[].returns` and again in `outputs`). `GET jobs/<id>/` then
answers a summary and a short-lived link to the whole report."""

from __future__ import annotations

import json

import pytest
import requests

from tests.files_helpers import qgs, upload

LAMBDA_ANSWER_BYTES = 6 * 1024 * 1024
LAYERS = 800


def _fields(count: int) -> list[dict]:
    """A layer's fields as the worker reports them (job_containers.cores.layers.fields_data)."""
    kinds = [("String", 80, "TextEdit", {"IsMultiline": False, "UseHtml": False}),
             ("Integer64", 0, "Range", {"AllowNull": True, "Max": 2147483647, "Min": -2147483648,
                                        "Precision": 0, "Step": 1, "Style": "SpinBox"}),
             ("Date", 0, "DateTime", {"allow_null": True, "calendar_popup": True,
                                      "display_format": "yyyy-MM-dd", "field_format": "yyyy-MM-dd",
                                      "field_iso_format": False}),
             ("String", 255, "ValueMap", {"map": [{"Good": "good"}, {"Fair": "fair"}, {"Poor": "poor"}]})]
    fields = []
    for index in range(count):
        kind, length, widget, config = kinds[index % len(kinds)]
        fields.append({
            "name": f"field_{index}", "alias": f"Field {index}", "comment": "", "type": kind,
            "length": length, "precision": 0, "is_not_null": index == 0, "constraint_strength":
            "hard" if index == 0 else "not_set", "constraint_expression": "",
            "constraint_expression_description": "", "constraint_expression_strength": "not_set",
            "is_unique": index == 0, "is_unique_strength": "hard" if index == 0 else "not_set",
            "default_value": None, "set_default_value_on_update": False, "widget_type": widget,
            "widget_config": config,
        })
    return fields


def _layer(number: int, fields: int) -> dict:
    """One layer as the worker reports it (job_containers.cores.layers.layer_data)."""
    layer_id = f"survey_points_{number:04d}_0f9a3c1e_6b2d_4c8e_9d1f_{number:012d}"
    return {
        "id": layer_id, "name": f"Survey points {number}", "crs": "EPSG:2056", "type": 0,
        "type_name": "Vector", "wkb_type": 1, "wkb_type_name": "Point", "geom_type": 0,
        "geom_type_name": "Point", "is_valid": True, "is_localized": False,
        "datasource": f"./data/survey_{number:04d}.gpkg|layername=survey_points_{number:04d}",
        "filename": f"data/survey_{number:04d}.gpkg", "provider_name": "ogr", "error_code": "no_error",
        "error_summary": "", "error_message": "", "provider_error_summary": None,
        "provider_error_message": None, "qfs_action": "offline", "qfs_cloud_action": "offline",
        "qfs_is_geometry_locked": None, "qfs_photo_naming": None, "qfs_unsupported_source_pk": None,
        "qfc_source_data_pk_name": "fid", "feature_count": 1000 + number, "fields": _fields(fields),
    }


def package_feedback(layers: int, fields: int = 5) -> dict:
    """A package job's feedback, made by the worker's own Workflow with the package job's steps."""
    from job_containers.cores.feedback import Step, Workflow

    workflow = Workflow("package_project", "Package Project", [
        Step("start_qgis_app", "Start QGIS Application"),
        Step("project_validity_check", "Project Validity Check"),
        Step("qgis_layers_data", "QGIS Layers Data", outputs=("layers_by_id",)),
        Step("package_project", "Package Project"),
        Step("qfield_layer_data", "Packaged Layers Data", outputs=("layers_by_id",)),
    ])
    by_id = {layer["id"]: layer for layer in (_layer(number, fields) for number in range(layers))}
    with workflow.step("start_qgis_app") as returns:
        returns["qgis_version"] = "3.22.16-Białowieża"
    with workflow.step("project_validity_check"):
        pass
    with workflow.step("qgis_layers_data") as returns:
        returns["layers_by_id"] = by_id
    with workflow.step("package_project") as returns:
        returns["qfield_project_file"] = "survey_qfield.qgs"
        returns["files"] = ["data.gpkg", "survey_qfield.qgs"]
    with workflow.step("qfield_layer_data") as returns:
        returns["layers_by_id"] = by_id
    return workflow.feedback()


def finished_package_job(client, project_id: str, feedback: dict) -> str:
    """A package job of the project, run to its end as the worker records one: its report saved
    (`jobs.save_report`), completed with its files, retired. Its id."""
    from chalicelib.models import Job
    from chalicelib.models.jobs import PackageFile
    from chalicelib.services import jobs
    from job_containers.kinds import package as packages

    job_id = client.post("jobs/", json={"project_id": project_id, "type": "package"}).json()["id"]
    job = Job.get(job_id)
    assert jobs.claim(job)
    jobs.save_report(job, feedback, "[job] package: done\n")
    files = [PackageFile(name="survey_qfield.qgs", size=10, md5sum="0" * 32, sha256="0" * 64)]
    assert packages.complete(job, files)
    jobs.retire(job)
    return job_id


@pytest.fixture
def pid(alice) -> str:
    project_id = alice.create_project("survey")["id"]
    assert upload(alice, project_id, "survey.qgs", qgs()).status == 201
    return project_id


def test_a_large_report_is_answered_as_a_summary_with_a_link_to_the_whole(alice, pid):
    feedback = package_feedback(LAYERS)
    assert len(json.dumps(feedback)) > LAMBDA_ANSWER_BYTES  # what the job answered before
    job_id = finished_package_job(alice, pid, feedback)

    reply = alice.get(f"jobs/{job_id}/")
    assert reply.status == 200 and len(reply.content) < 64 * 1024
    answer = reply.json()
    assert (answer["status"], answer["output"]) == ("finished", "[job] package: done\n")
    summary = answer["feedback"]
    assert {key: summary[key] for key in ("feedback_version", "workflow_id", "workflow_name")} == {
        key: feedback[key] for key in ("feedback_version", "workflow_id", "workflow_name")}
    assert summary["steps"] == [{"id": step["id"], "name": step["name"], "stage": step["stage"]}
                                for step in feedback["steps"]]
    assert "outputs" not in summary
    whole = requests.get(answer["feedback_url"], timeout=30)
    assert whole.status_code == 200 and whole.json() == feedback


def test_a_large_report_saved_before_summaries_existed_is_summarized_when_asked_for(alice, pid):
    from chalicelib.adapters import aws, storage
    from chalicelib.config import settings
    from chalicelib.models import Job
    from chalicelib.services import jobs

    feedback = package_feedback(LAYERS)
    job_id = finished_package_job(alice, pid, feedback)
    aws.s3().delete_object(Bucket=settings.bucket, Key=storage.job_key(pid, job_id, jobs.FEEDBACK_SUMMARY))
    assert Job.get(job_id).has_feedback
    answer = alice.get(f"jobs/{job_id}/").json()
    assert [step["id"] for step in answer["feedback"]["steps"]] == [step["id"] for step in feedback["steps"]]
    assert answer["feedback_url"] and "outputs" not in answer["feedback"]


def test_a_failed_jobs_large_report_keeps_its_error_in_the_summary(alice, pid):
    feedback = package_feedback(LAYERS)
    feedback.update(error="QGIS could not write data.gpkg", error_type="UNKNOWN",
                    error_class="OSError", error_stack="Traceback (most recent call last):\n" + "x" * 100)
    job_id = finished_package_job(alice, pid, feedback)
    summary = alice.get(f"jobs/{job_id}/").json()["feedback"]
    assert {key: summary[key] for key in ("error", "error_type", "error_class", "error_stack")} == {
        key: feedback[key] for key in ("error", "error_type", "error_class", "error_stack")}


def test_a_small_report_is_answered_whole(alice, pid):
    feedback = package_feedback(3)
    job_id = finished_package_job(alice, pid, feedback)
    answer = alice.get(f"jobs/{job_id}/").json()
    assert answer["feedback"] == feedback and answer["feedback_url"] is None
    created = alice.post("jobs/", json={"project_id": pid, "type": "package", "force": True}).json()
    assert (created["feedback"], created["feedback_url"]) == (None, None)


@pytest.mark.parametrize("fields", [5, 12])
def test_the_latest_package_of_800_layers_is_answered_far_below_what_lambda_can(alice, pid, fields):
    feedback = package_feedback(LAYERS, fields)
    finished_package_job(alice, pid, feedback)
    reply = alice.get(f"packages/{pid}/latest/?skip_metadata=1")
    assert reply.status == 200 and len(reply.content) < LAMBDA_ANSWER_BYTES / 4
    layers = reply.json()["layers"]
    packaged = feedback["outputs"]["qgis_layers_data"]["layers_by_id"]
    assert list(layers) == list(packaged)
    # Each layer keeps what QField and the SDK read, and everything else but its fields.
    assert all(layers[key] == {name: value for name, value in layer.items() if name != "fields"}
               for key, layer in packaged.items())


def test_the_latest_package_of_a_few_layers_keeps_their_fields(alice, pid):
    feedback = package_feedback(3)
    finished_package_job(alice, pid, feedback)
    assert alice.get(f"packages/{pid}/latest/").json()["layers"] == (
        feedback["outputs"]["qgis_layers_data"]["layers_by_id"])


def test_a_report_nested_300_levels_deep_is_answered(alice, pid):
    """A project file may nest a layer's widget settings at will, and the worker reports them:
    such a report is answered as stored, by the job and by the latest package."""
    feedback = package_feedback(2)
    nested = 1
    for _ in range(300):
        nested = {"Option": nested}
    layer = next(iter(feedback["outputs"]["qgis_layers_data"]["layers_by_id"].values()))
    layer["fields"][0]["widget_config"] = nested
    job_id = finished_package_job(alice, pid, feedback)
    job = alice.get(f"jobs/{job_id}/")
    assert job.status == 200 and job.json()["feedback"] == feedback
    latest = alice.get(f"packages/{pid}/latest/")
    assert latest.status == 200 and latest.json()["layers"][layer["id"]] == layer
