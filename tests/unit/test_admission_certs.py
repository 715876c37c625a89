"""Webhook certificates: renewed well before expiry, the CA kept in the bundle across its own rotation, and
a certificate that does not name the host the API server calls is replaced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from gitopsguard.admission.certs import issue, rotation_due

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
HOSTS = ["gitopsguard-webhook.gitopsguard-system.svc", "127.0.0.1"]
FIRST = issue(HOSTS, NOW)


@pytest.mark.parametrize(("days", "hosts", "due"), [
    (0, HOSTS, ""),
    (59, HOSTS, ""),
    (61, HOSTS, "the serving certificate expires within 30 days"),
    (306, HOSTS, "the CA expires within 60 days"),
    (0, [*HOSTS, "10.0.0.7"], "the serving certificate does not name every host"),
])  # fmt: skip
def test_rotation_is_due_well_before_expiry_or_when_a_host_is_missing(days: int, hosts: list[str], due: str) -> None:
    reason = rotation_due(FIRST, hosts, NOW + timedelta(days=days))
    assert reason.startswith(due) if due else reason == ""


def test_a_serving_rotation_keeps_the_ca_and_a_ca_rotation_keeps_the_old_ca_in_the_bundle() -> None:
    serving = issue(HOSTS, NOW + timedelta(days=61), FIRST)
    assert serving.ca == FIRST.ca and serving.cert != FIRST.cert and serving.bundle == FIRST.ca
    renewed = issue(HOSTS, NOW + timedelta(days=306), serving)
    assert renewed.ca != FIRST.ca and renewed.bundle == renewed.ca + FIRST.ca
    later = issue(HOSTS, NOW + timedelta(days=400), renewed)  # the old CA has expired: out of the bundle
    assert later.bundle == renewed.ca


def test_the_serving_certificate_names_each_host_and_is_signed_by_the_ca() -> None:
    cert = x509.load_pem_x509_certificate(FIRST.cert)
    ca = x509.load_pem_x509_certificate(FIRST.ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [HOSTS[0]]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    cert.verify_directly_issued_by(ca)
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
