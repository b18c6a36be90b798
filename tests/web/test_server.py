"""The server itself: loopback only without a password, TLS, the config checks."""

from __future__ import annotations

import http.client
import json
import ssl

import trustme

from hadaemon.web.settings import WebSettings, is_loopback, settings_problems
from tests.web.helpers import LiveDaemon, WebForTests, make_config


class NoPasswordWeb(WebForTests):
    password = False


def test_without_a_password_only_loopback_is_allowed(tmp_path) -> None:
    config = make_config(tmp_path, web={"port": 0, "address": "0.0.0.0"})
    with LiveDaemon(config, web=NoPasswordWeb, expect_web=False) as live:
        failed = live.daemon.failed
        assert "web" in failed
        assert "refusing to listen on 0.0.0.0" in failed["web"]
        assert "hadaemon passwd" in failed["web"]
        # the rest of the daemon runs on
        assert live.call(lambda: len(live.daemon.registry.devices())) == 3


def test_without_a_password_loopback_is_served(tmp_path) -> None:
    with LiveDaemon(make_config(tmp_path), web=NoPasswordWeb) as live:
        assert live.client().get("/api/status").status == 200


def test_with_a_password_any_address_is_allowed(tmp_path) -> None:
    config = make_config(tmp_path, web={"port": 0, "address": "0.0.0.0"})
    with LiveDaemon(config) as live:
        assert live.client().get("/api/status").status == 200


def test_tls(tmp_path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    config = make_config(tmp_path, web={"port": 0, "tls_cert": str(tmp_path / "cert.pem"),
                                        "tls_key": str(tmp_path / "key.pem")})
    with LiveDaemon(config) as live:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        conn = http.client.HTTPSConnection("127.0.0.1", live.port, context=context, timeout=20)
        conn.request("GET", "/api/status", headers={"Authorization": f"Bearer {live.token}"})
        answer = conn.getresponse()
        assert answer.status == 200
        assert json.loads(answer.read())["plugins"]
        assert answer.getheader("Strict-Transport-Security")
        conn.close()


def test_settings_checks() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2")
    half = WebSettings.from_section({"tls_key": "/x"})
    assert settings_problems(half) == ["tls_cert and tls_key go together: set both or "
                                       "neither"]
    assert "not an IP address" in settings_problems(
        WebSettings.from_section({"address": "example.org"}))[0]
