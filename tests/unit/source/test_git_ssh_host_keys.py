"""Git over SSH against a real sshd on loopback: the server's key in the operator's known_hosts lets the fetch
through; a wrong key, a host missing from the file, a key trusted only in ~/.ssh, or no known_hosts at all
is refused; and no file name, however hostile, changes what ssh runs or reads."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gitopsguard.errors import SourceError
from gitopsguard.source import Credentials, GitSource, SourceSpec
from gitopsguard.source.ssh import for_ssh, is_ssh, ssh_command
from tests.gitrepo import Upstream, git
from tests.sshserver import SshServer, keygen, ssh_server, sshd_missing

needs_sshd = pytest.mark.skipif(bool(sshd_missing()), reason=sshd_missing() or "sshd present")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[SshServer]:
    with ssh_server(tmp_path / "sshd") as running:
        yield running


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    repository = Upstream(tmp_path / "git")
    repository.write("apps/a.yaml", "kind: ConfigMap\n")
    repository.commit()
    return repository


def known_hosts(path: Path, *lines: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def fetch(server: SshServer, upstream: Upstream, workdir: Path, hosts: Path | None, key: Path | None = None) -> str:
    credentials = Credentials(ssh_key_file=key or server.client_key, known_hosts=hosts)
    source = GitSource(SourceSpec(server.url(upstream.bare)), workdir, credentials)
    return source.fetch(last_applied=None).commit


@needs_sshd
def test_the_servers_key_in_known_hosts_lets_the_fetch_through(
    server: SshServer, upstream: Upstream, tmp_path: Path
) -> None:
    hosts = known_hosts(tmp_path / "known_hosts", server.host_key_line)
    assert fetch(server, upstream, tmp_path / "gg", hosts) == git(upstream.bare, "rev-parse", "main")


@needs_sshd
def test_a_different_key_for_the_host_is_refused_as_a_possible_impostor(
    server: SshServer, upstream: Upstream, tmp_path: Path
) -> None:
    other = keygen(tmp_path / "other", "impostor")
    line = f"[127.0.0.1]:{server.port} " + " ".join(Path(f"{other}.pub").read_text().split()[:2])
    hosts = known_hosts(tmp_path / "known_hosts", line)
    changed = r"(?s)git fetch failed: .*HOST IDENTIFICATION HAS CHANGED.*verification failed"
    with pytest.raises(SourceError, match=changed):
        fetch(server, upstream, tmp_path / "gg", hosts)


@needs_sshd
def test_a_host_missing_from_known_hosts_is_refused_and_never_added(
    server: SshServer, upstream: Upstream, tmp_path: Path
) -> None:
    hosts = known_hosts(tmp_path / "known_hosts", server.host_key_line.replace("[127.0.0.1]", "[127.0.0.2]"))
    before = hosts.read_text()
    with pytest.raises(SourceError, match=r"(?s)Host key verification failed.*not the one --ssh-known-hosts holds"):
        fetch(server, upstream, tmp_path / "gg", hosts)
    assert hosts.read_text() == before


@needs_sshd
def test_a_key_trusted_in_home_or_etc_ssh_does_not_count(
    server: SshServer, upstream: Upstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    known_hosts(home / ".ssh" / "known_hosts", server.host_key_line)  # what accept-new would have left there
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(SourceError, match=r"Host key verification failed"):
        fetch(server, upstream, tmp_path / "gg", known_hosts(tmp_path / "empty_known_hosts"))


def test_an_ssh_url_without_known_hosts_is_refused_before_any_connection_saying_what_to_give(tmp_path: Path) -> None:
    for url in ("ssh://git@127.0.0.1:1/org/repo.git", "git@github.com:org/repo.git", "git+ssh://h/r"):
        with pytest.raises(SourceError, match=r"needs the server's host keys: give --ssh-known-hosts FILE"):
            GitSource(SourceSpec(url), tmp_path / "gg", Credentials())


def test_a_known_hosts_file_that_cannot_be_read_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"absent: the known_hosts file for ssh://h/r cannot be read"):
        GitSource(SourceSpec("ssh://h/r"), tmp_path / "gg", Credentials(known_hosts=tmp_path / "absent"))


@needs_sshd
def test_hostile_file_names_reach_ssh_as_the_same_files(server: SshServer, upstream: Upstream, tmp_path: Path) -> None:
    folder = tmp_path / "a b'c;$(touch pwned)%d %u `id`"
    folder.mkdir()
    key = folder / "id key"
    key.write_bytes(server.client_key.read_bytes())
    key.chmod(0o600)
    hosts = known_hosts(folder / "known hosts %h", server.host_key_line)
    assert fetch(server, upstream, tmp_path / "gg", hosts, key) == git(upstream.bare, "rev-parse", "main")
    assert not list(tmp_path.rglob("pwned")) and not Path("pwned").exists()


@pytest.mark.parametrize("name", ['a"b', "a\\b", "${HOME}", "a\nb", "a\x7fb"])
def test_a_path_ssh_cannot_read_literally_is_refused_naming_it(tmp_path: Path, name: str) -> None:
    with pytest.raises(SourceError, match=r"which ssh would read as something else"):
        ssh_command(None, tmp_path / name)
    with pytest.raises(SourceError, match=r"which ssh would read as something else"):
        GitSource(SourceSpec("file:///r"), tmp_path / "gg", Credentials(ssh_key_file=tmp_path / name))
    with pytest.raises(SourceError, match=r"which ssh would read as something else"):  # at start, even for https
        GitSource(SourceSpec("https://h/r"), tmp_path / "gg", Credentials(known_hosts=tmp_path / name))


@given(st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=40))
@example("%d")
@example("'; touch x #")
@example(" lead and trail ")
def test_every_path_is_one_shell_word_or_refused(name: str) -> None:
    path = Path("/k") / name.replace("/", "_").replace("\x00", "_")
    try:
        command = ssh_command(path, path)
    except SourceError:
        return
    words = shlex.split(command)
    escaped = str(path).replace("%", "%%")
    assert f'UserKnownHostsFile="{escaped}"' in words and f'IdentityFile="{escaped}"' in words
    assert for_ssh(path, "x") == escaped


@pytest.mark.parametrize(
    ("url", "ssh"),
    [("ssh://h/r", True), ("SSH://h/r", True), ("git+ssh://h/r", True), ("git@h:o/r.git", True), ("h:r", True),
     ("https://h/r", False), ("file:///r", False), ("/srv/r.git", False), ("./a:b", False), ("fd::17", False)],
)  # fmt: skip
def test_which_urls_git_reaches_over_ssh(url: str, ssh: bool) -> None:
    assert is_ssh(url) is ssh


def test_git_always_runs_ssh_with_strict_host_keys_even_for_urls_not_taken_for_ssh() -> None:
    environment = Credentials().environment()
    words = shlex.split(environment["GIT_SSH_COMMAND"])
    assert "StrictHostKeyChecking=yes" in words and "UserKnownHostsFile=/dev/null" in words
    assert "GlobalKnownHostsFile=/dev/null" in words


def test_the_command_line_refuses_an_ssh_url_without_known_hosts_before_connecting(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gitopsguard.cli import main

    arguments = ["reconcile", "--repo", "git@github.com:org/cluster.git", "--path", "apps",
                 "--kubeconfig", str(tmp_path / "no-such-kubeconfig"), "--workdir", str(tmp_path / "gg")]  # fmt: skip
    done = CliRunner().invoke(main, arguments, env={"GITOPSGUARD_SSH_KNOWN_HOSTS": None})
    assert done.exit_code == 2
    assert "git@github.com:org/cluster.git: git over ssh needs the server's host keys: give --ssh-known-hosts" in (
        done.output
    )
    from_environment = CliRunner().invoke(main, arguments, env={"GITOPSGUARD_SSH_KNOWN_HOSTS": str(tmp_path / "kh")})
    assert from_environment.exit_code == 2
    assert f"{tmp_path / 'kh'}: the known_hosts file for git@github.com:org/cluster.git cannot be read" in (
        from_environment.output
    )
