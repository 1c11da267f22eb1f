# One image for every scopenet service: `scopenet service <name>` picks which one runs.
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 nftables libnftables1 iputils-ping bird2 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY constraints.txt ./
COPY libs ./libs
COPY services ./services
COPY commands ./commands
# Every distribution of the workspace, with the versions pinned for development.
RUN pip install --no-cache-dir -c constraints.txt ./libs/* ./services/* ./commands
ENTRYPOINT ["scopenet"]
