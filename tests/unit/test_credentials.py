"""Credentials in a repository URL are never shown: not by the banner, errors, status or the audit log.

Issue #15, break 13: ``run`` printed ``https://user:TOKEN@host/...`` in its banner, and a password with an
``@`` or ``/`` (percent-encoded or raw) survived the scrubbing of git's error messages.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.devcluster.ports import free_port
from gitopsguard.errors import SourceError
from gitopsguard.source import Credentials, GitSource, SourceSpec, display_url
from gitopsguard.source.urls import split_login
from tests import gitrepo

PASSWORD = "p@ss/w0rd"  # what the operator meant
ENCODED = "p%40ss%2Fw0rd"  # what the URL says
URL = f"https://user:{ENCODED}@127.0.0.1:1/x.git"


def leaked(text: str, password: str = PASSWORD) -> list[str]:
    """Every form of ``password``, or a 3-character piece of it, that ``text`` still shows."""
    pieces = {password[i : i + 3] for i in range(len(password) - 2)}
    shown = {password, quote(password, safe=""), quote(password, safe="").lower(), quote(password)}
    shown.add(base64.b64encode(f"user:{password}".encode()).decode())
    return sorted(form for form in shown | pieces if form in text)


def kubeconfig_of_nowhere(folder: Path) -> Path:
    """A kubeconfig whose API server is a closed port: the commands start, then fail to reach it."""
    path = folder / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{free_port()}'}}}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"
    )
    return path


def gitopsguard(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("GITOPSGUARD_GIT_TOKEN", None)
    done = subprocess.run([sys.executable, "-m", "gitopsguard", *args], capture_output=True, text=True, env=env,
                          timeout=60, check=False)  # fmt: skip
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (URL, "https://***@127.0.0.1:1/x.git"),
        ("https://user:p@ss@host/x.git", "https://***@host/x.git"),  # a raw "@"
        ("https://user:pa/ss@host/x.git", "https://***@host/x.git"),  # a raw "/"
        ("https://user:pa ss'q@host/x.git", "https://***@host/x.git"),  # a raw space and quote
        ("https://ghp_0123456789abcdef@github.com/o/r.git", "https://***@github.com/o/r.git"),  # a token as user
        ("HTTPS://u:p@host/x.git", "HTTPS://***@host/x.git"),
        ("ssh://git:pw@host:22/o/r.git", "ssh://***@host:22/o/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),  # scp-like: a user, no password
        ("git:pw@github.com:o/r.git", "***@github.com:o/r.git"),  # a password anyway: hidden
        ("/srv/git/r.git", "/srv/git/r.git"),
        ("https://github.com/o/r.git", "https://github.com/o/r.git"),
        ("file:///srv/git/r.git", "file:///srv/git/r.git"),
    ],
)
def test_display_url_shows_no_userinfo(url: str, shown: str) -> None:
    assert display_url(url) == shown


@given(user=st.text(), password=st.text(min_size=1), encode=st.booleans())
@example(user="user", password=PASSWORD, encode=True)
@example(user="user", password=PASSWORD, encode=False)
@example(user="", password="a://b@c", encode=False)
def test_display_url_hides_any_login_whole(user: str, password: str, encode: bool) -> None:
    login = f"{quote(user, safe='')}:{quote(password, safe='')}" if encode else f"{user}:{password}"
    assert display_url(f"https://{login}@127.0.0.1:1/x.git") == "https://***@127.0.0.1:1/x.git"


@pytest.mark.parametrize(
    "url", [URL, "https://user:p%40ss%2fw0rd@127.0.0.1:{port}/x.git", "https://user:p@ss%2Fw0rd@127.0.0.1:{port}/x.git"]
)
def test_a_fetch_error_never_shows_the_password_in_any_encoding(tmp_path: Path, url: str) -> None:
    source = GitSource(SourceSpec(url.format(port=free_port())), tmp_path / "gg")
    with pytest.raises(SourceError) as error:
        source.fetch(last_applied=None)
    assert "git fetch failed" in str(error.value)
    assert leaked(str(error.value)) == []
    assert leaked((tmp_path / "gg" / "checkout" / ".git" / "config").read_text()) == [], "nor is it stored"


def test_a_url_with_a_raw_slash_in_its_password_is_refused_without_showing_it(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"^https://\*\*\*@127\.0\.0\.1:1/x\.git: .*percent-encode") as error:
        GitSource(SourceSpec("https://user:p@ss/w0rd@127.0.0.1:1/x.git"), tmp_path / "gg")
    assert leaked(str(error.value)) == []


@given(password=st.text(min_size=1).filter(lambda p: "*" not in p), noise=st.text(), in_url=st.booleans())
@example(password=PASSWORD, noise="fatal: unable to access 'https://user:p%40ss%2fw0rd@h/x.git/'", in_url=True)
def test_the_scrubber_removes_a_password_or_token_in_every_form(password: str, noise: str, in_url: bool) -> None:
    url = f"https://user:{quote(password, safe='')}@host/x.git"
    credentials = Credentials().for_url(url) if in_url else Credentials(token=password)
    encoded = quote(password, safe="")
    basic = base64.b64encode(f"{'user' if in_url else 'x-access-token'}:{password}".encode()).decode()
    scrubbed = credentials.scrub(" ".join([noise, password, encoded, encoded.lower(), url, basic, noise]))
    assert [form for form in (password, encoded, encoded.lower(), basic) if form in scrubbed] == []


def test_a_local_repository_needs_no_login_and_fetches(tmp_path: Path) -> None:
    upstream = gitrepo.Upstream(tmp_path / "up")
    upstream.write("a.yaml", "one")
    head = upstream.commit()
    assert GitSource(SourceSpec(upstream.url), tmp_path / "gg").fetch(last_applied=None).commit == head


def test_reconcile_refuses_a_url_with_a_raw_slash_in_its_password_and_shows_none_of_it(tmp_path: Path) -> None:
    code, out, err = gitopsguard(
        tmp_path, "reconcile", "--repo", "https://user:p@ss/w0rd@127.0.0.1:1/x.git", "--path", "clusters/dev",
        "--kubeconfig", str(kubeconfig_of_nowhere(tmp_path)),
    )  # fmt: skip
    assert code == 2 and "percent-encode" in err and "Traceback" not in err
    assert leaked(out) == leaked(err) == []


def test_status_hides_a_login_stored_in_an_inventory_by_an_older_version() -> None:
    from gitopsguard.cluster.inventory import Inventory
    from gitopsguard.commands.status import describe

    old = f"{URL}: git fetch failed: fatal: unable to access 'https://user:p@ss/w0rd@127.0.0.1:1/x.git/'"
    shown = describe("dev", Inventory(last_error=old, last_changes=f"configured from {URL}"), "FAILING")
    assert leaked(shown) == []
    assert "https://***@127.0.0.1:1/x.git: git fetch failed" in shown


@given(user=st.text(min_size=1), password=st.text())
@example(user="user", password=PASSWORD)
def test_git_is_given_the_url_without_its_login_and_the_login_decoded(user: str, password: str) -> None:
    url = f"https://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:1/x.git"
    remote, login = split_login(url)
    assert remote == "https://127.0.0.1:1/x.git"
    assert login is not None and (login.user, login.password) == (user, password)


def test_ssh_keeps_the_user_and_drops_only_the_password() -> None:
    assert split_login("ssh://git:pw@host:22/o/r.git")[0] == "ssh://git@host:22/o/r.git"
    assert split_login("git@github.com:o/r.git") == ("git@github.com:o/r.git", None)
    remote, login = split_login("git:p@ss@github.com:o/r.git")
    assert remote == "git@github.com:o/r.git" and login is not None and login.password == "p@ss"
    assert "p@ss" not in Credentials().for_url("git:p@ss@github.com:o/r.git").scrub("ssh: git:p@ss@github.com")


def test_git_still_sends_the_urls_login_to_the_server(tmp_path: Path) -> None:
    """The login left the URL, not the request: git sends it as Basic authorization."""
    heard: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            heard.append(self.headers.get("Authorization", ""))
            self.send_response(404)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://user:{ENCODED}@127.0.0.1:{server.server_port}/x.git"
        with pytest.raises(SourceError) as error:
            GitSource(SourceSpec(url), tmp_path / "gg").fetch(last_applied=None)
    finally:
        server.shutdown()
    assert heard and heard[0] == "Basic " + base64.b64encode(f"user:{PASSWORD}".encode()).decode()
    assert leaked(str(error.value)) == []


def test_the_default_workdir_carries_nothing_derived_from_the_password() -> None:
    """Its name (a hash) shows in paths: a hash of the password would let it be guessed offline."""
    from gitopsguard.commands.reconcile_once import default_workdir

    assert default_workdir(URL, "main") == default_workdir("https://user:other@127.0.0.1:1/x.git", "main")
    assert default_workdir(URL, "main") != default_workdir("https://user:other@127.0.0.1:1/y.git", "main")


def test_no_value_holding_a_login_shows_it_in_its_repr() -> None:
    spec = SourceSpec(URL)
    assert repr(spec) == "SourceSpec(url='https://***@127.0.0.1:1/x.git', branch='main')"
    assert leaked(repr(Credentials(token=PASSWORD).for_url(URL))) == leaked(repr(split_login(URL))) == []
