# syntax=docker/dockerfile:1
# The kubectl-gitops image: the admission webhook by default (`webhook serve`), and the same CLI for
# anything else (`docker run kubectl-gitops:0.1.0 version`). Built in two stages so that the runtime
# image holds the installed wheels and nothing of the build.
#
#   docker build -t kubectl-gitops:0.1.0 .
#
# Runs as uid/gid 65532 with a read-only root filesystem (see manifests/install): bytecode is compiled
# at install time and never written at runtime, and /tmp is an emptyDir in the pod.

FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Only what the wheel is built from: no .venv, tests or .git in the context of this stage.
COPY pyproject.toml setup.cfg README.md ./
COPY kubectl_gitops ./kubectl_gitops
COPY webhook ./webhook
COPY manifests ./manifests
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/home/nonroot
# git and ssh for GitPython when the same image runs the controller; the webhook itself needs neither.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65532 nonroot \
    && useradd --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home --shell /usr/sbin/nologin nonroot
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels kubectl-gitops \
    && kubectl-gitops --help >/dev/null
USER 65532:65532
WORKDIR /home/nonroot
EXPOSE 8443
ENTRYPOINT ["kubectl-gitops"]
CMD ["webhook", "serve", "--cert-dir", "/certs", "--port", "8443"]
