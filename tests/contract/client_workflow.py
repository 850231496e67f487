"""One workflow end to end through a client generated from /api/v1/openapi.json by openapi-python-client.

scripts/test generates the client (package `shutong_client`) into a temporary directory, puts it on
PYTHONPATH and runs this against a demo server: a consumer department logs in, searches the catalog in
Chinese, applies for a conditional resource; the provider's reviewer approves with narrowed items; the
consumer looks a record up under the grant and receives only the granted items.

Usage: client_workflow.py BASE_URL
"""

import sys

from shutong_client import AuthenticatedClient, Client
from shutong_client.api.auth import login
from shutong_client.api.catalog import search
from shutong_client.api.data import get_record, query
from shutong_client.api.sharing import approve, create_request
from shutong_client.models import (
    AccessMethod,
    ApproveBody,
    CreateRequestBody,
    LoginRequest,
    LoginResponse,
    Purpose,
    QuerySpec,
    RequestDetail,
)

PASSWORD = "Demo-Pass-2026"
RESOURCE = "101/000001"  # 人口基本信息, 有条件共享, provided by 示范省公安厅
GRANTED = ["公民身份号码", "姓名"]


def session(base: str, username: str) -> AuthenticatedClient:
    r = login.sync_detailed(client=Client(base_url=base), body=LoginRequest(username=username, password=PASSWORD))
    assert r.status_code == 200, f"login {username}: {r.status_code} {r.content!r}"
    assert isinstance(r.parsed, LoginResponse)
    return AuthenticatedClient(base_url=base, token=r.parsed.token)


def main(base: str) -> None:
    consumer = session(base, "rs.admin")
    provider = session(base, "ga.reviewer")

    found = search.sync_detailed(client=consumer, q="人口")
    assert found.status_code == 200, found.content
    codes = [h.code for h in found.parsed.hits]
    assert RESOURCE in codes, codes

    body = CreateRequestBody(
        resource_code=RESOURCE,
        purpose=Purpose.DATA_VERIFICATION,
        basis="《社会保险法》第五十八条：参保登记核验",
        items=GRANTED + ["户籍地址"],
        access_methods=[AccessMethod.ONLINE_QUERY],
        period_to="2027-06-30",
        expected_volume="每日约 100 次查询",
    )
    applied = create_request.sync_detailed(client=consumer, body=body)
    assert applied.status_code == 201, applied.content
    assert isinstance(applied.parsed, RequestDetail)
    request_id = applied.parsed.request.id

    answer = ApproveBody(items=GRANTED, note="仅提供核验所需信息项")
    approved = approve.sync_detailed(request_id, client=provider, body=answer)
    assert approved.status_code == 200, approved.content
    grant = approved.parsed.grant
    assert grant is not None and sorted(grant.items) == sorted(GRANTED), approved.content

    # The provider reads its own dataset in clear to pick a key; the consumer looks it up under the grant.
    cls, seq = RESOURCE.split("/")
    page = query.sync_detailed(cls, seq, client=provider, body=QuerySpec(limit=1))
    assert page.status_code == 200, page.content
    key = page.parsed.to_dict()["records"][0]["公民身份号码"]
    record = get_record.sync_detailed(cls, seq, key, client=consumer, grant_id=grant.id)
    assert record.status_code == 200, record.content
    fields = record.parsed.to_dict()
    assert "户籍地址" not in fields, f"an item outside the grant arrived: {fields}"
    assert "姓名" in fields, fields
    print(f"client workflow: request {request_id} approved as grant {grant.id}; record {key[:6]}… read with {sorted(fields)}")


if __name__ == "__main__":
    main(sys.argv[1])
