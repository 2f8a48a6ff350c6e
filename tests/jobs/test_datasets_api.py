from __future__ import annotations

import json

from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from jobs.models import Dataset
from tests.conftest import INSTRUCTION_ROWS, PREFERENCE_ROWS, jsonl


def upload(api: APIClient, name: str, content: bytes):
    return api.post(
        "/api/datasets", {"file": SimpleUploadedFile(name, content)}, format="multipart"
    )


def test_it_detects_each_format_and_counts_rows(api: APIClient) -> None:
    cases = {
        "text": [{"text": "hello world"}] * 3,
        "chat": [
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "yo"},
                ]
            }
        ]
        * 4,
        "instruction": INSTRUCTION_ROWS,
        "preference": PREFERENCE_ROWS,
    }
    for expected_format, rows in cases.items():
        # when
        response = upload(api, f"{expected_format}.jsonl", jsonl(rows))
        # then
        assert response.status_code == 201, response.json()
        body = response.json()
        assert (body["format"], body["rows"], body["error_count"]) == (
            expected_format,
            len(rows),
            0,
        )
        assert body["launchable"] is True
        assert len(body["sha256"]) == 64
        assert body["preview"][0] == rows[0] | ({"input": ""} if "instruction" in rows[0] else {})


def test_it_reports_each_malformed_line_with_its_number(api: APIClient) -> None:
    # given: line 2 is not JSON, line 4 has a number for output, line 5 misses output
    lines = [
        json.dumps({"instruction": "a", "output": "b"}),
        '{"instruction": "a", "output": ',
        json.dumps({"instruction": "c", "output": "d"}),
        json.dumps({"instruction": "e", "output": 7}),
        json.dumps({"instruction": "f"}),
    ]
    # when
    response = upload(api, "bad.jsonl", ("\n".join(lines) + "\n").encode())
    # then
    body = response.json()
    assert response.status_code == 201
    assert body["error_count"] == 3
    assert [e["line"] for e in body["errors"]] == [2, 4, 5]
    assert "JSON" in body["errors"][0]["message"]
    assert "output" in body["errors"][1]["message"]
    assert body["launchable"] is False


def test_it_reads_csv_uploads(api: APIClient) -> None:
    content = b"prompt,chosen,rejected\nSay 1,1,not 1\nSay 2,2,not 2\n"
    body = upload(api, "prefs.csv", content).json()
    assert (body["format"], body["rows"]) == ("preference", 2)


def test_it_refuses_an_upload_over_the_size_limit_before_storing_it(
    api: APIClient, settings
) -> None:
    # given
    settings.DATASET_MAX_BYTES = 1024
    # when
    response = upload(api, "big.jsonl", jsonl([{"text": "x" * 100}] * 20))
    # then
    assert response.status_code == 400
    assert "limit" in response.json()["file"][0]
    assert Dataset.objects.count() == 0


def test_it_refuses_an_unknown_file_type(api: APIClient) -> None:
    response = upload(api, "notes.txt", b"hello")
    assert response.status_code == 400
    assert ".txt" in response.json()["file"][0]


def test_it_hides_a_dataset_from_another_user(api: APIClient, outsider_api: APIClient) -> None:
    dataset_id = upload(api, "d.jsonl", jsonl(INSTRUCTION_ROWS)).json()["id"]
    assert outsider_api.get(f"/api/datasets/{dataset_id}").status_code == 404
    assert outsider_api.delete(f"/api/datasets/{dataset_id}").status_code == 404
    assert outsider_api.get("/api/datasets").json()["results"] == []
    assert api.get(f"/api/datasets/{dataset_id}").status_code == 200


def test_it_serves_the_normalised_copy_with_exactly_the_format_keys(api: APIClient) -> None:
    rows = [{"instruction": "a", "output": "b", "id": 7}]
    dataset = Dataset.objects.get(id=upload(api, "x.jsonl", jsonl(rows)).json()["id"])
    with dataset.normalized_file.open("rb") as stored:
        assert json.loads(stored.readline()) == {"instruction": "a", "input": "", "output": "b"}


def test_it_requires_sign_in(db: None) -> None:
    assert APIClient().get("/api/datasets").status_code in (401, 403)
