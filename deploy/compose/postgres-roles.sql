-- The local docker compose stack's Postgres roles, one per stateful service (run once, by the
-- postgres image, when its volume is first initialised). Each role creates its own schema at start
-- and owns it; neither may read the other's (libs/store/roles.py). For local use only: the
-- passwords are the ones in docker-compose.yml.
CREATE ROLE scopenet_ipam LOGIN PASSWORD 'compose-ipam-db-password';
GRANT CONNECT, CREATE ON DATABASE scopenet TO scopenet_ipam;
CREATE ROLE scopenet_topology LOGIN PASSWORD 'compose-topology-db-password';
GRANT CONNECT, CREATE ON DATABASE scopenet TO scopenet_topology;
