# The Strand image: the agent and command line (/usr/local/bin/strand, a Node single executable) and
# the CNI plugins (/usr/local/bin/cni/strand, Bun-compiled, with strand-ipam a link to it), which
# `strand install` copies into the node's CNI bin dir; plus nft and modprobe for the agent. Build
# stage: the repository's own build, exactly as `npm run build` runs it here.
# Build it as the tag deploy/strand.yaml runs (README "kind and minikube" loads it onto the nodes):
#   docker build -t ghcr.io/strand-net/strand:0.1.0 .
FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends nftables kmod \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/dist/strand /usr/local/bin/strand
COPY --from=build /src/dist/cni/strand /usr/local/bin/cni/strand
RUN ln -s strand /usr/local/bin/cni/strand-ipam
ENTRYPOINT ["/usr/local/bin/strand"]
