# syntax=docker/dockerfile:1
# One image for Hookline's three components; the command picks which one runs:
#   docker run hookline:local gateway | triggers | worker [--runner NAME] | apply PATHS...
# Settings come from HOOKLINE_* variables (see compose.yaml) or a file named by HOOKLINE_CONFIG.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md /src/
COPY hookline /src/hookline
COPY gateway /src/gateway
COPY triggers /src/triggers
COPY worker /src/worker
COPY schemas /src/schemas
RUN pip wheel --no-deps --wheel-dir /wheels /src
# The wrapper steps and servers start through: it sets their parent-death signal
# (hookline/processes.py), about 0.5 ms of CPU cheaper per process than setpriv.
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends gcc libc6-dev \
    && mkdir -p /out \
    && cc -O2 -static -Wall -Wextra -Werror -o /out/hookline-die-with-parent hookline/native/die_with_parent.c


FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The wheel is mounted rather than copied so it leaves no layer behind; `fast` adds uvloop,
# which `hookline` runs on when it is installed.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install "$(echo /wheels/hookline-*.whl)[fast]"
# Beside the interpreter, where hookline.processes looks for it first.
COPY --from=build /out/hookline-die-with-parent /usr/local/bin/hookline-die-with-parent

# The example agents run `python3 agents/demo_agent.py` from the agents file's folder, so the
# worker needs examples/ at the path HOOKLINE_AGENTS_FILE names (compose.yaml: /app/examples).
WORKDIR /app
COPY examples /app/examples

# Files stay owned by root: the components only read them.
RUN useradd --create-home --uid 10001 --user-group hookline
USER 10001:10001

EXPOSE 8080 8081
ENTRYPOINT ["hookline"]
CMD ["--help"]
