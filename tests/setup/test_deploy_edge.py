"""The shipped proxy and compose files carry the HTTP edge (issue 24, item 4): the gateways believe
X-Forwarded-* from the proxy's fixed address only, and nginx times out slow heads and caps connections."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import yaml

from gateway.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_the_gateways_trust_forwarded_headers_from_the_proxys_fixed_address_only() -> None:
    spec = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    proxy_address = ipaddress.ip_address(spec["services"]["proxy"]["networks"]["province"]["ipv4_address"])
    subnet = ipaddress.ip_network(spec["networks"]["province"]["ipam"]["config"][0]["subnet"])
    assert proxy_address in subnet
    for name in ("gateway-1", "gateway-2"):
        trusted = spec["services"][name]["environment"]["GATEWAY_FORWARDED_ALLOW_IPS"]
        assert Settings(forwarded_allow_ips=trusted).forwarded_allow_ips == [str(proxy_address)], name


def test_nginx_times_out_slow_heads_caps_connections_and_says_it_spoke_https() -> None:
    conf = (ROOT / "deploy/nginx/gateway.conf").read_text()
    directives = dict(re.findall(r"^\s*(client_header_timeout|keepalive_timeout|limit_conn)\s+([^;]+);", conf, re.M))
    assert int(directives["client_header_timeout"].rstrip("s")) <= Settings().http_header_timeout_s
    assert directives["limit_conn"].split()[0] in conf.split("limit_conn_zone", 1)[1].split(";", 1)[0]
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf
    assert "proxy_set_header X-Forwarded-Proto https;" in conf
