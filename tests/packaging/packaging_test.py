#!/usr/bin/env python3
"""The packaging files (packaging/) checked with the real tools this machine has and against the
real server: the install step and the systemd unit (systemd-analyze verify, and the unit's own
command lines run), the alert rules (promtool check rules, promtool test rules), the Grafana
dashboard (every query checked by promtool and named metric served), the Dockerfile (its runtime
packages against the binary's libraries, its entrypoint, command and health check run), the
compose example (its Envoy filter's descriptors limited by its configuration, asked over HTTP of a
server started with its command line) and the Kubernetes manifest (its ConfigMap checked, its
arguments and probes matching the server's ports).

Usage: packaging_test.py SOURCE_DIR BUILD_DIR REDIS_SERVER WORK_DIR
Prints a line per check; at the first failure says what was expected and what came, exits 1.
Every process it starts is killed on the way out, whatever happens.
"""
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import yaml

SOURCE, BUILD, REDIS_SERVER, WORK = sys.argv[1:5]
PACKAGING = os.path.join(SOURCE, "packaging")
PREFIX = os.path.join(WORK, "prefix")
children = []


def fail(message):
    print("FAIL: " + message)
    sys.exit(1)


def passed(message):
    print("ok: " + message)


def run(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(argv, log_name):
    """Starts `argv` with its standard error in WORK/log_name; returns (process, log path)."""
    log = os.path.join(WORK, log_name)
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(log, "w"),
                               start_new_session=True)
    children.append(process)
    return process, log


def wait_for(log, text, process, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with open(log) as f:
            if text in f.read():
                return
        if process.poll() is not None:
            break
        time.sleep(0.02)
    with open(log) as f:
        fail(f"{process.args[0]} did not say {text!r} within {seconds} s; its log:\n{f.read()}")


def stop_all():
    for p in children:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def http(port, method, path, body=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=body.encode() if body else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def mapped(args, grpc_port, http_port, config_dir, redis_url=None):
    """The container's arguments for this machine: its paths and ports, and Redis."""
    out = []
    for a in args:
        a = a.replace("/etc/floodgate", config_dir)
        a = a.replace("0.0.0.0:8081", f"127.0.0.1:{grpc_port}")
        a = a.replace("0.0.0.0:8080", f"127.0.0.1:{http_port}")
        if redis_url and a.startswith("redis://"):
            a = redis_url
        out.append(a)
    return out


def dockerfile():
    """The Dockerfile's instructions, its continuation lines joined, comments left out."""
    text = open(os.path.join(PACKAGING, "Dockerfile")).read()
    text = re.sub(r"\\\n", " ", text)
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def main():
    os.makedirs(WORK, exist_ok=True)
    serve = os.path.join(PREFIX, "bin", "floodgate-serve")

    # The install step (the Dockerfile's, and a package's): both programs and the unit.
    r = run(["cmake", "--install", BUILD, "--component", "server", "--prefix", PREFIX])
    if r.returncode != 0:
        fail("cmake --install --component server: " + r.stdout + r.stderr)
    unit = os.path.join(PREFIX, "lib", "systemd", "system", "floodgate.service")
    for path in (serve, os.path.join(PREFIX, "bin", "floodgate-rls-load"), unit):
        if not os.access(path, os.R_OK):
            fail(f"cmake --install did not install {path}")
    passed("cmake --install --component server: floodgate-serve, floodgate-rls-load, the unit")

    # The unit: systemd's own check, silent (an unknown or misspelt directive is only a warning).
    r = run(["systemd-analyze", "verify", unit])
    if r.returncode != 0 or r.stdout.strip() or r.stderr.strip():
        fail(f"systemd-analyze verify {unit}: status {r.returncode}: {r.stdout}{r.stderr}")
    unit_text = open(unit).read()
    for needed in ("ExecReload=/bin/kill -HUP $MAINPID", "DynamicUser=yes", "NoNewPrivileges=yes",
                   "ProtectSystem=strict", "CapabilityBoundingSet=\n"):
        if needed not in unit_text:
            fail(f"the unit lacks {needed!r}")
    passed("systemd-analyze verify: the installed unit, hardened, with ExecReload")

    # Its command lines, on this machine's paths and ports: the check, then the service, which
    # reloads on the unit's ExecReload signal.
    config_dir = os.path.join(PACKAGING, "config")
    grpc_port, http_port = free_port(), free_port()
    lines = dict(re.findall(r"^(ExecStartPre|ExecStart)=(.*)$", unit_text, re.M))
    pre = mapped(shlex.split(lines["ExecStartPre"]), grpc_port, http_port, config_dir)
    r = run(pre)
    if r.returncode != 0:
        fail(f"the unit's ExecStartPre {pre}: {r.stdout}{r.stderr}")
    main_line = lines["ExecStart"].replace("$FLOODGATE_ARGS", "")
    argv = mapped(shlex.split(main_line), grpc_port, http_port, config_dir)
    process, log = start(argv, "unit.log")
    wait_for(log, "HTTP on ", process)
    process.send_signal(signal.SIGHUP)
    wait_for(log, "(SIGHUP): nothing changed", process)
    process.terminate()
    if process.wait(timeout=10) != 0:
        fail("the unit's service did not exit 0 on SIGTERM")
    passed("the unit's ExecStartPre, ExecStart and ExecReload run: checked, served, reloaded")

    # The Debian package (CPack): the programs and the unit under /usr, its ExecStart there, and
    # dependencies read from the programs that cover the Dockerfile's runtime packages.
    deb_dir = os.path.join(WORK, "deb")
    r = run(["cpack", "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-B", deb_dir])
    debs = [f for f in os.listdir(deb_dir) if f.endswith(".deb")] if os.path.isdir(deb_dir) else []
    if r.returncode != 0 or len(debs) != 1:
        fail("cpack -G DEB: " + r.stdout[-800:] + r.stderr[-800:])
    deb = os.path.join(deb_dir, debs[0])
    listing = run(["dpkg-deb", "-c", deb]).stdout
    for path in ("./usr/bin/floodgate-serve", "./usr/bin/floodgate-rls-load",
                 "./usr/lib/systemd/system/floodgate.service"):
        if path not in listing:
            fail(f"{debs[0]} lacks {path}: {listing}")
    deb_unit = subprocess.run(f"dpkg-deb --fsys-tarfile '{deb}' | tar -xO ./usr/lib/systemd/system/floodgate.service",
                              shell=True, capture_output=True, text=True).stdout
    if "\nExecStart=/usr/bin/floodgate-serve " not in deb_unit:
        fail(f"{debs[0]}'s unit does not start /usr/bin/floodgate-serve: {deb_unit}")
    deb_depends = run(["dpkg-deb", "-f", deb, "Depends"]).stdout
    runtime = [l.strip() for l in open(os.path.join(PACKAGING, "runtime-packages"))
               if l.strip() and not l.startswith("#")]
    for package in runtime:
        if not re.search(r"(^|, )" + re.escape(package) + r"( |,|$)", deb_depends.strip()):
            fail(f"{debs[0]} does not depend on {package} (packaging/runtime-packages): {deb_depends}")
    passed(f"cpack -G DEB: {debs[0]}, the programs and the unit under /usr, depending on "
           f"{deb_depends.strip()}")

    # Alert rules: promtool's check, and each alert fired by the series that should fire it.
    alerts = os.path.join(PACKAGING, "prometheus-alerts.yaml")
    r = run(["promtool", "check", "rules", alerts])
    if r.returncode != 0:
        fail("promtool check rules: " + r.stdout + r.stderr)
    r = run(["promtool", "test", "rules", "prometheus-alerts-test.yaml"], cwd=PACKAGING)
    if r.returncode != 0:
        fail("promtool test rules: " + r.stdout + r.stderr)
    alert_names = [rule["alert"] for g in yaml.safe_load(open(alerts))["groups"] for rule in g["rules"]]
    tested = open(os.path.join(PACKAGING, "prometheus-alerts-test.yaml")).read()
    for name in alert_names:
        if f"alertname: {name}\n" not in tested:
            fail(f"alert {name} has no test in prometheus-alerts-test.yaml")
    passed(f"promtool check rules and test rules: {len(alert_names)} alerts, each tested")

    # The Dockerfile.
    instructions = dockerfile()
    froms = [i.split()[1] for i in instructions if i.startswith("FROM ")]
    if froms != ["debian:12", "debian:12-slim"]:
        fail(f"the Dockerfile's stages are {froms}, expected a debian:12 build and a debian:12-slim run")
    build_steps = next(i for i in instructions if i.startswith("RUN bash scripts/install-deps.sh"))
    install = re.search(r"cmake --install build/release --component (\S+) --prefix (\S+)", build_steps)
    if not install or install.group(1) != "server":
        fail("the Dockerfile's build stage does not install the server component: " + build_steps)
    known = run(["cmake", "--build", BUILD, "--target", "help"]).stdout
    for target in re.search(r"--target ([^&]*) &&", build_steps).group(1).split():
        if not re.search(r"^" + re.escape(target) + r":", known, re.M):
            fail(f"the Dockerfile builds target {target}, which this build does not have")
    copy = next(i for i in instructions if i.startswith("COPY --from=build"))
    for source in copy.split()[2:-1]:
        installed = source.replace(install.group(2), PREFIX)
        if not os.path.exists(installed):
            fail(f"the Dockerfile copies {source}, which the install step does not make ({installed})")
    user = next(i for i in instructions if i.startswith("USER ")).split()[1]
    if user in ("0", "root"):
        fail("the Dockerfile runs as root")
    passed(f"Dockerfile: debian:12 build, debian:12-slim run as user {user}; its targets exist and "
           "its install step makes what it copies")

    # Its runtime packages hold every library the binary loads (with what they depend on, and
    # the base image's required packages).
    wanted = [l.strip() for l in open(os.path.join(PACKAGING, "runtime-packages"))
              if l.strip() and not l.startswith("#")]
    status = run(["dpkg-query", "-W", "-f=${Package}\t${Priority}\t${Pre-Depends}, ${Depends}\n"]).stdout
    depends, required = {}, set()
    for line in status.splitlines():
        name, priority, deps = line.split("\t")
        if priority == "required":
            required.add(name)
        depends[name] = [d.strip().split()[0].split(":")[0] for alt in deps.split(",")
                         for d in alt.split("|") if d.strip()]
    closure, todo = set(), list(wanted) + list(required)
    while todo:
        p = todo.pop()
        if p in closure:
            continue
        closure.add(p)
        todo.extend(depends.get(p, []))
    missing = []
    for lib in re.findall(r"=> (/\S+)", run(["ldd", serve]).stdout):
        if re.search(r"/lib(a|ub|t|l)san\.so", lib):
            continue  # A sanitizer preset's build (make asan): not what a package ships.
        real = os.path.realpath(lib)
        candidates = {real, lib, re.sub(r"^/usr/lib/", "/lib/", real)}
        owner = None
        for c in candidates:
            r = run(["dpkg", "-S", c])
            if r.returncode == 0:
                owner = r.stdout.split(":")[0]
                break
        if owner is None:
            fail(f"no Debian package has {lib}, which floodgate-serve loads")
        if owner not in closure:
            missing.append(f"{lib} ({owner})")
    if missing:
        fail("packaging/runtime-packages lacks what floodgate-serve loads: " + ", ".join(missing))
    passed(f"packaging/runtime-packages ({', '.join(wanted)}) hold every library floodgate-serve loads")

    # The entrypoint and command, on Redis, answer; the health check passes, and fails when
    # nothing answers.
    entry = json.loads(next(i for i in instructions if i.startswith("ENTRYPOINT "))[len("ENTRYPOINT "):])
    command = json.loads(next(i for i in instructions if i.startswith("CMD "))[len("CMD "):])
    health = json.loads(re.search(r"HEALTHCHECK .*?CMD (\[.*\])$",
                                  next(i for i in instructions if i.startswith("HEALTHCHECK "))).group(1))
    if entry != ["floodgate-serve"]:
        fail(f"the Dockerfile's entrypoint is {entry}")
    redis_port = free_port()
    redis, redis_log = start([REDIS_SERVER, "--port", str(redis_port), "--bind", "127.0.0.1",
                              "--save", "", "--appendonly", "no"], "redis.log")
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", redis_port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline or redis.poll() is not None:
                fail(f"redis-server did not listen on {redis_port}: {open(redis_log).read()}")
            time.sleep(0.02)
    compose = yaml.safe_load(open(os.path.join(PACKAGING, "docker-compose.yaml")))
    compose_command = compose["services"]["floodgate"]["command"]
    if compose_command[:len(command)] != command or compose_command[len(command):] != ["--redis", "redis://redis:6379"]:
        fail(f"compose runs floodgate with {compose_command}, not the Dockerfile's {command} and --redis")
    grpc_port, http_port = free_port(), free_port()
    argv = [serve] + mapped(compose_command, grpc_port, http_port, config_dir,
                            f"redis://127.0.0.1:{redis_port}")
    server, server_log = start(argv, "compose.log")
    wait_for(server_log, "HTTP on ", server)
    check = [a.replace("/8080", f"/{http_port}") for a in health]
    if run(check).returncode != 0:
        fail(f"the health check {check} failed against the running server")
    dead = [a.replace("/8080", f"/{free_port()}") for a in health]
    if run(dead).returncode == 0:
        fail(f"the health check {dead} passed with nothing listening")
    passed("the Dockerfile's entrypoint and command (compose's, on Redis) serve; its health check "
           "passes, and fails with nothing listening")

    # Compose's Envoy asks with the configuration's domain, at floodgate's gRPC port, and every
    # descriptor its routes send is limited by the configuration.
    envoy = yaml.safe_load(open(os.path.join(PACKAGING, "envoy.yaml")))
    manager = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    rate_filter = next(f for f in manager["http_filters"] if f["name"] == "envoy.filters.http.ratelimit")["typed_config"]
    cluster_name = rate_filter["rate_limit_service"]["grpc_service"]["envoy_grpc"]["cluster_name"]
    cluster = next(c for c in envoy["static_resources"]["clusters"] if c["name"] == cluster_name)
    address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    grpc_flag = command[command.index("--grpc") + 1]
    if address["address"] != "floodgate" or str(address["port_value"]) != grpc_flag.rsplit(":", 1)[1]:
        fail(f"Envoy's {cluster_name} cluster is {address}, not the floodgate service at {grpc_flag}")
    if "http2_protocol_options" not in json.dumps(cluster):
        fail(f"Envoy's {cluster_name} cluster does not speak HTTP/2 (gRPC)")
    domain = rate_filter["domain"]
    routes = manager["route_config"]["virtual_hosts"][0]["routes"]
    limits = {}
    dump = http(http_port, "GET", "/rlconfig")[1]
    for m in re.finditer(r"^(\S+): unit=SECOND requests_per_unit=(\d+)", dump, re.M):
        limits[m.group(1)] = int(m.group(2))
    checked = 0
    for route in routes:
        for rate_limit in route["route"]["rate_limits"]:
            entries = []
            for action in rate_limit["actions"]:
                if "remote_address" in action:
                    entries.append(("remote_address", "192.0.2.7"))
                elif "generic_key" in action:
                    entries.append(("generic_key", action["generic_key"]["descriptor_value"]))
                else:
                    fail(f"the test does not know Envoy's action {action}")
            rule = domain + "." + ".".join(k + ("_" + v if k == "generic_key" else "") for k, v in entries)
            if rule not in limits:
                fail(f"Envoy sends {entries} in domain {domain}; no rule limits it ({dump})")
            def ask(hits):
                return http(http_port, "POST", "/json", json.dumps({
                    "domain": domain, "hitsAddend": hits, "descriptors": [
                        {"entries": [{"key": k, "value": v} for k, v in entries]}]}))[0]
            # The whole limit in one request, then one more hit: over. Each pair starts a window
            # (of a second, on this machine's clock, as the server counts): a pair that a loaded
            # machine spreads over two windows is tried again, in a window of its own.
            for attempt in range(3):
                time.sleep(1.0 - time.time() % 1.0 + 0.005)
                codes = [ask(limits[rule]), ask(1)]
                if codes == [200, 429]:
                    break
            else:
                fail(f"{rule}: {limits[rule]} a second, yet {limits[rule]} hits then 1 were answered {codes}")
            checked += 1
    passed(f"compose: Envoy's filter asks floodgate:{grpc_flag.rsplit(':', 1)[1]} in domain {domain}; "
           f"its {checked} descriptors are each limited, over Redis")

    # The dashboard: every query is PromQL promtool reads, on metrics the server serves.
    metrics = http(http_port, "GET", "/metrics")[1]
    families = set(re.findall(r"^# TYPE (\S+) ", metrics, re.M))
    dashboard = json.load(open(os.path.join(PACKAGING, "grafana-dashboard.json")))
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query{i}", "expr": e.replace("$__rate_interval", "5m")}
        for i, e in enumerate(exprs)]}]}
    rules_file = os.path.join(WORK, "dashboard-queries.yaml")
    yaml.safe_dump(rules, open(rules_file, "w"))
    r = run(["promtool", "check", "rules", rules_file])
    if r.returncode != 0:
        fail("the dashboard's queries are not PromQL: " + r.stdout + r.stderr)
    for e in exprs + [rule["expr"] for g in yaml.safe_load(open(alerts))["groups"] for rule in g["rules"]]:
        for name in re.findall(r"\b((?:floodgate|process)_[a-z_]+)", e):
            family = re.sub(r"_(bucket|sum|count)$", "", name) if name.endswith(("_bucket", "_sum", "_count")) else name
            if family not in families:
                fail(f"{name} (in {e!r}) is not served at /metrics")
    titles = " ".join(p["title"] for p in dashboard["panels"]).lower()
    for subject in ("requests", "over the limit", "latency", "redis", "failure policy"):
        if subject not in titles:
            fail(f"the dashboard has no panel on {subject}")
    passed(f"Grafana dashboard: {len(exprs)} queries checked by promtool, every metric (and every "
           "alert's) served at /metrics")

    # Kubernetes: the ConfigMap loads, the arguments are the image's, the probes ask its ports.
    docs = list(yaml.safe_load_all(open(os.path.join(PACKAGING, "kubernetes.yaml"))))
    kinds = {d["kind"]: d for d in docs}
    config_map = kinds["ConfigMap"]
    k8s_config = os.path.join(WORK, "k8s-config")
    os.makedirs(k8s_config, exist_ok=True)
    for name, text in config_map["data"].items():
        open(os.path.join(k8s_config, name), "w").write(text)
    r = run([serve, "--check-config", k8s_config])
    if r.returncode != 0:
        fail("the ConfigMap's configuration does not load: " + r.stderr)
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    if container["args"] != command + ["--redis", "$(REDIS_URL)"]:
        fail(f"the Deployment's args {container['args']} are not the image's command and --redis")
    if not any(e["name"] == "REDIS_URL" for e in container["env"]):
        fail("the Deployment's args name $(REDIS_URL), which its env does not set")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    http_flag = command[command.index("--http") + 1]
    if ports != {"grpc": int(grpc_flag.rsplit(":", 1)[1]), "http": int(http_flag.rsplit(":", 1)[1])}:
        fail(f"the Deployment's ports {ports} are not the server's {grpc_flag} and {http_flag}")
    if container["readinessProbe"]["grpc"]["port"] != ports["grpc"]:
        fail("the readiness probe does not ask gRPC's health service on the gRPC port")
    if container["livenessProbe"]["tcpSocket"]["port"] not in ports:
        fail("the liveness probe names a port the container does not have")
    if container["volumeMounts"][0]["mountPath"] != command[command.index("--config") + 1]:
        fail("the ConfigMap is not mounted where --config reads")
    if str(pod["securityContext"]["runAsUser"]) != user or not pod["securityContext"]["runAsNonRoot"]:
        fail("the pod does not run as the image's user, non-root")
    for port in kinds["Service"]["spec"]["ports"]:
        if port["targetPort"] not in ports:
            fail(f"the Service targets port {port['targetPort']}, which the container does not have")
    passed("Kubernetes: the ConfigMap loads; args, ports, probes, mount and user match the image")


try:
    main()
finally:
    stop_all()
