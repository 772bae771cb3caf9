"""gateway.edge: PIXPORT_API_ADDRESSES parsing and the rendered cluster of API processes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway import edge


def test_addresses_parse() -> None:
    assert edge.parse_addresses(" 10.0.0.1:50051,[::1]:5002 , api-1.internal:50051,") == [
        ("10.0.0.1", 50051), ("::1", 5002), ("api-1.internal", 50051),
    ]


@pytest.mark.parametrize("raw", ["", ",", "api", "api:0", "api:65536", "a b:1", "http://api:1", "[::1]"])
def test_bad_addresses_name_the_variable(raw: str) -> None:
    with pytest.raises(ValueError, match="PIXPORT_API_ADDRESSES"):
        edge.parse_addresses(raw)


def cluster(config: str) -> dict[str, object]:
    [found] = [c for c in yaml.safe_load(config)["static_resources"]["clusters"] if c["name"] == "pixport_grpc"]
    return found  # type: ignore[no-any-return]


def endpoints(config: dict[str, object]) -> list[tuple[str, int]]:
    [group] = config["load_assignment"]["endpoints"]  # type: ignore[index]
    return [(e["endpoint"]["address"]["socket_address"]["address"],
             e["endpoint"]["address"]["socket_address"]["port_value"]) for e in group["lb_endpoints"]]


def test_one_local_api_by_default() -> None:
    rendered = cluster(edge.render(http_port=8080, grpc_port=50051, admin_port=9901, grpc_host="127.0.0.2"))
    assert rendered["type"] == "STATIC"
    assert endpoints(rendered) == [("127.0.0.2", 50051)]
    [check] = rendered["health_checks"]  # type: ignore[misc]
    assert "grpc_health_check" in check and check["no_traffic_interval"] == "2s"


def test_several_apis_and_names_resolve_by_dns(tmp_path: Path) -> None:
    ips = edge.render(http_port=8080, grpc_port=50051, admin_port=9901,
                      api_addresses=[("10.0.0.1", 50051), ("10.0.0.2", 50052)])
    assert cluster(ips)["type"] == "STATIC"
    assert endpoints(cluster(ips)) == [("10.0.0.1", 50051), ("10.0.0.2", 50052)]
    names = edge.render(http_port=8080, grpc_port=50051, admin_port=9901,
                        api_addresses=[("api-1", 50051), ("10.0.0.2", 50051)])
    assert cluster(names)["type"] == "STRICT_DNS"
    path = tmp_path / "envoy.yaml"
    path.write_text(names)
    edge.validate(path)  # Envoy itself accepts it
