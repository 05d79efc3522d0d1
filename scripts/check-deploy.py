#!/usr/bin/env python3
"""Checks every file under deploy/ (run by `make test` through `make deploy-check`).

- Kubernetes manifests (deploy/kubernetes/**/*.yaml): each document against the
  Kubernetes API schemas of the pinned `kubernetes-validate` (strict: unknown fields are
  errors) for the oldest and newest Kubernetes versions we support; custom resources
  against deploy/kubernetes/schemas/<group>_<version>_<Kind>.json (JSON Schema; a
  sub-object marked `x-kubernetes-validate-as` is validated as that core/v1 type).
- Every container that runs our image: the image tag is the crate's version, `command`
  (if set) is the binary's path, its arguments are accepted by the binary, and every
  NATS_* / WASMCLOUD_* variable it gets (env, envFrom ConfigMaps) is one the binary reads
  (`[env: …]` in its --help). Exec probes and systemd Exec lines are checked the same way.
- systemd units (deploy/systemd): `systemd-analyze verify` on copies whose paths to the
  binary point at the built one; a drop-in directory `X.d/` without `X` gets a stand-in
  `X`. Any output of systemd-analyze (an unknown key is only a warning there) fails.
- The Dockerfile (repo root): its final stage runs as a non-root user and its entrypoint
  is the binary's path.

Before checking the real files, each checker is run on a deliberately broken input and
must reject it: a checker that passes everything fails the run. Exit 0 when all is well,
1 otherwise, with every problem listed.
"""

import argparse
import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jsonschema
import kubernetes_validate
import yaml
from dockerfile_parse import DockerfileParser

# Oldest and newest Kubernetes versions the manifests must be valid for.
KUBERNETES_VERSIONS = ["1.29.0", "1.37.0"]
IMAGE_REPO = "ghcr.io/wasmcloud-provisioner/wasmcloud-provisioner"
BINARY_PATH = "/usr/local/bin/wasmcloud-provisioner"
# Variables the CLI may read; a manifest or unit setting one it does not read is wrong.
OUR_ENV = re.compile(r"^(NATS_|WASMCLOUD_PROVISIONER_|WASMCLOUD_JS_DOMAIN$)")

REPO = Path(__file__).resolve().parent.parent


class Checker:
    def __init__(self, binary: Path, version: str):
        self.binary = binary
        self.version = version
        self.problems: list[str] = []
        self._help_env: dict[tuple, set] = {}

    def fail(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    # --- the binary's own view of its arguments and environment ---------------------

    def subcommand(self, args: list[str]) -> tuple:
        """The leading words of `args`: the (sub)command, e.g. `bootstrap host`, and any
        positional argument after it (`--help` after those still prints that command's
        help)."""
        words = []
        for a in args:
            if a.startswith("-"):
                break
            words.append(a)
        return tuple(words)

    def env_read_by(self, sub: tuple) -> set:
        if sub not in self._help_env:
            out = subprocess.run(
                [str(self.binary), *sub, "--help"], capture_output=True, text=True
            )
            self._help_env[sub] = set(re.findall(r"\[env: ([A-Z0-9_]+)", out.stdout))
        return self._help_env[sub]

    def check_args(self, where: str, args: list[str]) -> tuple:
        """The binary accepts `args`: clap stops at a trailing --help once every argument
        before it has parsed, and fails on an unknown flag or a bad value."""
        # $(VAR) (Kubernetes), ${VAR} and $VAR (systemd) expand at run time.
        args = [re.sub(r"\$(\([A-Za-z_][A-Za-z0-9_]*\)|\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)", "x", a)
                for a in args]
        out = subprocess.run(
            [str(self.binary), *args, "--help"], capture_output=True, text=True
        )
        if out.returncode != 0:
            self.fail(where, f"`wasmcloud-provisioner {' '.join(args)}` is refused by the "
                             f"binary: {out.stderr.strip()}")
        return self.subcommand(args)

    def check_env(self, where: str, sub: tuple, names) -> None:
        known = self.env_read_by(sub)
        for name in names:
            if OUR_ENV.match(name) and name not in known:
                self.fail(where, f"{name} is not read by `wasmcloud-provisioner "
                                 f"{' '.join(sub)}` (it reads: {', '.join(sorted(known))})")

    # --- Kubernetes ------------------------------------------------------------------

    def k8s_validate(self, where: str, doc: dict) -> None:
        for v in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(doc, v, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                self.custom_resource(where, doc)
                return
            except kubernetes_validate.ValidationError as e:
                self.fail(where, f"invalid for Kubernetes {v}: {e.message} "
                                 f"(at {'.'.join(str(p) for p in e.absolute_path) or 'the top'})")
                return
            except Exception as e:  # noqa: BLE001 - any other failure is a failure
                self.fail(where, f"cannot be validated for Kubernetes {v}: {e}")
                return

    def custom_resource(self, where: str, doc: dict) -> None:
        api = doc.get("apiVersion", "")
        group, _, version = api.rpartition("/")
        schema_file = self.schemas / f"{group}_{version}_{doc.get('kind')}.json"
        if not schema_file.is_file():
            self.fail(where, f"no schema for {api} {doc.get('kind')}: add {schema_file.relative_to(REPO)}")
            return
        schema = json.loads(schema_file.read_text())
        validator = jsonschema.Draft202012Validator(schema)
        for err in validator.iter_errors(doc):
            path = ".".join(str(p) for p in err.absolute_path)
            self.fail(where, f"{err.message} (at {path or 'the top'}; {schema_file.name})")
        self.validate_as_core(where, schema, doc)

    def validate_as_core(self, where: str, schema: dict, value) -> None:
        """Validates the parts of `value` that `schema` marks x-kubernetes-validate-as."""
        kind = schema.get("x-kubernetes-validate-as") if isinstance(schema, dict) else None
        if kind and value is not None:
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "check"}}
            stand_in = {"name": "stand-in", "image": "stand-in"}
            if kind == "io.k8s.api.core.v1.PodSpec":
                spec = copy.deepcopy(value)
                # The operator supplies the containers; the rest must be a valid PodSpec.
                spec.setdefault("containers", [stand_in])
                pod["spec"] = spec
            elif kind == "io.k8s.api.core.v1.ResourceRequirements":
                pod["spec"] = {"containers": [dict(stand_in, resources=value)]}
            elif kind == "io.k8s.api.core.v1.Volume":
                pod["spec"] = {"containers": [stand_in], "volumes": [value]}
            else:
                self.fail(where, f"the schema asks for {kind}, which this checker cannot validate")
                return
            self.k8s_validate(f"{where} ({kind})", pod)
            if kind == "io.k8s.api.core.v1.PodSpec":
                self.containers(where, value)
            return
        if not isinstance(schema, dict) or not isinstance(value, dict):
            return
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                sub_value = value[key]
                if isinstance(sub.get("items"), dict) and isinstance(sub_value, list):
                    for item in sub_value:
                        self.validate_as_core(where, sub["items"], item)
                else:
                    self.validate_as_core(where, sub, sub_value)

    def pod_specs(self, doc: dict):
        kind = doc.get("kind")
        spec = doc.get("spec") or {}
        if kind == "Pod":
            yield spec
        elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
            yield (spec.get("template") or {}).get("spec") or {}
        elif kind == "CronJob":
            job = (spec.get("jobTemplate") or {}).get("spec") or {}
            yield (job.get("template") or {}).get("spec") or {}

    def containers(self, where: str, pod_spec: dict) -> None:
        for c in (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or []):
            image = c.get("image", "")
            if not image.startswith(IMAGE_REPO + ":"):
                continue
            cw = f"{where}: container {c.get('name')}"
            tag = image.split(":", 1)[1]
            if tag != self.version:
                self.fail(cw, f"image tag {tag} is not the crate's version {self.version}")
            command = c.get("command") or []
            if command and command[0] not in (BINARY_PATH, "wasmcloud-provisioner"):
                self.fail(cw, f"command {command} does not run {BINARY_PATH} (the image has no "
                              "shell: run the binary directly)")
                continue
            sub = self.check_args(cw, command[1:] + (c.get("args") or []))
            names = [e["name"] for e in c.get("env") or []]
            for source in c.get("envFrom") or []:
                ref = (source.get("configMapRef") or {}).get("name")
                if ref is None:
                    continue
                if ref not in self.config_maps:
                    self.fail(cw, f"envFrom names ConfigMap {ref}, which no file under deploy/ defines")
                    continue
                names.extend(self.config_maps[ref])
            self.check_env(cw, sub, names)
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                cmd = ((c.get(probe) or {}).get("exec") or {}).get("command")
                if cmd and cmd[0] in (BINARY_PATH, "wasmcloud-provisioner"):
                    self.check_args(f"{cw} {probe}", cmd[1:])

    def check_kubernetes(self, files: list[Path], schemas: Path) -> None:
        self.schemas = schemas
        docs = []
        for f in files:
            where = str(f.relative_to(REPO)) if f.is_relative_to(REPO) else str(f)
            try:
                loaded = [d for d in yaml.safe_load_all(f.read_text()) if d is not None]
            except yaml.YAMLError as e:
                self.fail(where, f"not YAML: {e}")
                continue
            if not loaded:
                self.fail(where, "holds no Kubernetes object")
            for d in loaded:
                docs.append((f"{where} {d.get('kind')}/{(d.get('metadata') or {}).get('name')}", d))
        self.config_maps = {
            (d.get("metadata") or {}).get("name"): list((d.get("data") or {}).keys())
            for _, d in docs if d.get("kind") == "ConfigMap"
        }
        for where, d in docs:
            if not isinstance(d, dict) or "apiVersion" not in d or "kind" not in d:
                self.fail(where, "not a Kubernetes object (apiVersion and kind are required)")
                continue
            self.k8s_validate(where, d)
            for pod_spec in self.pod_specs(d):
                self.containers(where, pod_spec)
            if d.get("kind") == "ConfigMap":
                # A ConfigMap consumed by our containers holds only variables they read;
                # checked per container above. Here: every key is a valid variable name.
                for key in (d.get("data") or {}):
                    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                        self.fail(where, f"key {key!r} cannot be an environment variable")

    # --- systemd ---------------------------------------------------------------------

    def check_systemd(self, unit_dir: Path) -> None:
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            self.fail("systemd", "systemd-analyze is not installed (scripts/install-deploy-tools.sh installs it)")
            return
        with tempfile.TemporaryDirectory(prefix="check-deploy-units-") as tmp:
            tmp = Path(tmp)
            for entry in sorted(unit_dir.rglob("*")):
                if entry.is_file():
                    dest = tmp / entry.relative_to(unit_dir)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    text = entry.read_text()
                    self.check_exec_lines(str(entry.relative_to(REPO) if entry.is_relative_to(REPO) else entry), text)
                    dest.write_text(text.replace(BINARY_PATH, str(self.binary)))
            units = sorted(p for p in tmp.iterdir() if p.is_file())
            for dropins in sorted(p for p in tmp.iterdir() if p.is_dir() and p.name.endswith(".d")):
                base = tmp / dropins.name[:-2]
                if not base.exists():
                    # The unit the drop-in extends is the user's; a minimal stand-in.
                    base.write_text("[Service]\nExecStart=/bin/true\n")
                    units.append(base)
            env = dict(os.environ, SYSTEMD_UNIT_PATH=f"{tmp}:", SYSTEMD_LOG_COLOR="0")
            for unit in units:
                out = subprocess.run([analyze, "verify", str(unit)], capture_output=True,
                                     text=True, env=env)
                text = (out.stdout + out.stderr).strip()
                if out.returncode != 0 or text:
                    self.fail(f"{unit_dir.name}/{unit.name}",
                              f"systemd-analyze verify (exit {out.returncode}): {text.replace(str(tmp) + '/', '')}")

    def check_exec_lines(self, where: str, text: str) -> None:
        env_names = re.findall(r"^Environment=\"?([A-Z0-9_]+)=", text, re.M)
        # A line ending in a backslash continues on the next one.
        for line in re.sub(r"\\\n", " ", text).splitlines():
            m = re.match(r"^Exec(Start|StartPre|StartPost|Reload|Stop|StopPost|Condition)=[-@:+!|]*(\S+)(.*)$", line)
            if not m or not m.group(2).endswith("/wasmcloud-provisioner"):
                continue
            try:
                words = shlex.split(m.group(3))
            except ValueError as e:
                self.fail(where, f"cannot split {line!r}: {e}")
                continue
            # Specifiers like %d are systemd's; any value stands in for them.
            words = [re.sub(r"%[a-zA-Z%]", "x", w) for w in words]
            sub = self.check_args(where, words)
            self.check_env(where, sub, env_names)

    # --- Dockerfile ------------------------------------------------------------------

    def check_dockerfile(self, path: Path) -> None:
        where = path.name
        parser = DockerfileParser(path=str(path))
        instructions = parser.structure
        stages = [i for i in instructions if i["instruction"] == "FROM"]
        if len(stages) < 2:
            self.fail(where, "expected a multi-stage build (a build stage and a runtime stage)")
        last_from = max((n for n, i in enumerate(instructions) if i["instruction"] == "FROM"), default=0)
        final = instructions[last_from:]
        users = [i["value"].split(":")[0] for i in final if i["instruction"] == "USER"]
        if not users or users[-1] in ("root", "0"):
            self.fail(where, "the runtime stage must end with a non-root USER")
        entry = [i["value"] for i in final if i["instruction"] == "ENTRYPOINT"]
        if not entry or BINARY_PATH not in entry[-1]:
            self.fail(where, f"the runtime stage's ENTRYPOINT must be {BINARY_PATH}")


def self_test(binary: Path, version: str) -> list[str]:
    """Each checker must reject a broken input; returns what it wrongly accepted."""
    wrong = []
    with tempfile.TemporaryDirectory(prefix="check-deploy-selftest-") as tmp:
        tmp = Path(tmp)
        cases = {
            "a Deployment with an unknown field": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n"
            "spec:\n  replicas: 2\n  replikas: 2\n  selector: {matchLabels: {a: b}}\n"
            "  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers: [{name: c, image: i}]\n",
            "a custom resource missing a required field": "apiVersion: k8s.wasmcloud.dev/v1alpha1\n"
            "kind: WasmCloudHostConfig\nmetadata: {name: x}\nspec: {version: '1.9.2'}\n",
            "a podTemplateAdditions with a misspelt PodSpec field": "apiVersion: k8s.wasmcloud.dev/v1alpha1\n"
            "kind: WasmCloudHostConfig\nmetadata: {name: x}\nspec:\n  lattice: default\n  version: '1.9.2'\n"
            "  schedulingOptions:\n    podTemplateAdditions: {initContainer: []}\n",
            "a ConfigMap variable the binary does not read": "apiVersion: v1\nkind: ConfigMap\n"
            "metadata: {name: cm}\ndata: {WASMCLOUD_PROVISIONER_NO_SUCH_SETTING: '1'}\n---\n"
            "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  template:\n    spec:\n"
            "      restartPolicy: Never\n      containers:\n        - name: c\n"
            f"          image: {IMAGE_REPO}:{version}\n          args: [apply, --wadm]\n"
            "          envFrom: [{configMapRef: {name: cm}}]\n",
            "a container argument the binary does not accept": "apiVersion: batch/v1\nkind: Job\n"
            "metadata: {name: j}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n"
            f"      containers:\n        - name: c\n          image: {IMAGE_REPO}:{version}\n"
            "          args: [bootstrap, host, --lattice, default, --no-such-flag]\n",
        }
        for what, text in cases.items():
            f = tmp / "case.yaml"
            f.write_text(text)
            c = Checker(binary, version)
            c.check_kubernetes([f], REPO / "deploy" / "kubernetes" / "schemas")
            if not c.problems:
                wrong.append(f"Kubernetes check accepted {what}")
        units = {
            "a misspelt key": "[Service]\nExecStart=/bin/true\nProtectSytem=strict\n",
            "a relative ExecStart": "[Service]\nExecStart=bin/true\n",
            "a missing binary": "[Service]\nExecStart=/nonexistent/wasmcloud-provisioner-x serve\n",
            "a bad bootstrap flag": f"[Service]\nExecStartPre={BINARY_PATH} bootstrap host --no-such-flag\n"
            "ExecStart=/bin/true\n",
        }
        for what, text in units.items():
            d = tmp / f"units-{len(wrong)}-{abs(hash(what))}"
            d.mkdir()
            (d / "broken.service").write_text(text)
            c = Checker(binary, version)
            c.check_systemd(d)
            if not c.problems:
                wrong.append(f"systemd check accepted a unit with {what}")
        docker = tmp / "Dockerfile"
        docker.write_text("FROM debian:12\nCOPY x /usr/local/bin/wasmcloud-provisioner\n"
                          "ENTRYPOINT [\"/usr/local/bin/wasmcloud-provisioner\"]\n")
        c = Checker(binary, version)
        c.check_dockerfile(docker)
        if not c.problems:
            wrong.append("Dockerfile check accepted a single-stage image running as root")
    return wrong


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", required=True, type=Path, help="the built wasmcloud-provisioner")
    args = parser.parse_args()
    binary = args.binary.resolve()
    if not os.access(binary, os.X_OK):
        print(f"check-deploy: {binary} is not an executable; build it first", file=sys.stderr)
        return 1
    version = re.search(r'^version = "([^"]+)"', (REPO / "Cargo.toml").read_text(), re.M).group(1)

    wrong = self_test(binary, version)
    if wrong:
        for w in wrong:
            print(f"check-deploy: SELF-TEST FAILED: {w}", file=sys.stderr)
        return 1

    deploy = REPO / "deploy"
    checker = Checker(binary, version)
    k8s_dir = deploy / "kubernetes"
    schemas = k8s_dir / "schemas"
    manifests, handled = [], set()
    for f in sorted(deploy.rglob("*")):
        if not f.is_file():
            continue
        rel = f.relative_to(deploy)
        if f.suffix == ".md":
            handled.add(f)
        elif f.is_relative_to(schemas) and f.suffix == ".json":
            try:
                jsonschema.Draft202012Validator.check_schema(json.loads(f.read_text()))
            except Exception as e:  # noqa: BLE001
                checker.fail(str(rel), f"not a valid JSON Schema: {e}")
            handled.add(f)
        elif f.is_relative_to(k8s_dir) and f.suffix in (".yaml", ".yml"):
            manifests.append(f)
            handled.add(f)
        elif f.is_relative_to(deploy / "systemd"):
            handled.add(f)
    checker.check_kubernetes(manifests, schemas)
    if (deploy / "systemd").is_dir():
        checker.check_systemd(deploy / "systemd")
    checker.check_dockerfile(REPO / "Dockerfile")
    for f in sorted(deploy.rglob("*")):
        if f.is_file() and f not in handled:
            checker.fail(str(f.relative_to(REPO)), "no check covers this file: teach scripts/check-deploy.py")

    if checker.problems:
        for p in checker.problems:
            print(f"check-deploy: {p}", file=sys.stderr)
        print(f"check-deploy: {len(checker.problems)} problem(s)", file=sys.stderr)
        return 1
    units = len([p for p in (deploy / "systemd").rglob("*") if p.is_file()]) if (deploy / "systemd").is_dir() else 0
    print(f"check-deploy: ok: {len(manifests)} Kubernetes files (Kubernetes "
          f"{' and '.join(KUBERNETES_VERSIONS)}), {units} systemd files, Dockerfile; "
          f"self-test rejected every broken input")
    return 0


if __name__ == "__main__":
    sys.exit(main())
