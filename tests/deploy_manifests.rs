//! Checks of `deploy/`, which cannot be started here (no container engine): every YAML file
//! parses, every `AQS_*` variable the manifests set is one the CLI reads, and names, ports,
//! topics, users and images agree between Compose, Kubernetes, the Dockerfile, Grafana's
//! provisioning, the README and the CLI's own defaults.
//!
//! The CLI is asked with `aqs env-vars --json`. A service whose subcommand does not exist yet
//! is reported as not yet cross-checked (on stderr, past the test harness's capture); the
//! check applies by itself as soon as the subcommand appears.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_norway::Value;

/// The aqs services, by subcommand.
const SERVICES: &[&str] = &["ingest", "projector", "analytics", "migrate", "dashboard"];
/// Settings that must have one value everywhere they are set.
const SAME_EVERYWHERE: &[&str] = &[
    "AQS_TIME_ZONE",
    "AQS_DATA_DIR",
    "AQS_EVENTS_TOPIC",
    "AQS_REFERENCE_TOPIC",
    "AQS_DEAD_LETTER_TOPIC",
    "AQS_EVENTS_PARTITIONS",
    "AQS_PROJECTOR_GROUP",
    "AQS_INGEST_LISTEN",
    "AQS_CLICKHOUSE_USER",
    "AQS_CLICKHOUSE_DATABASE",
];
/// Settings whose deployed value must equal the CLI's default (once the CLI declares them).
const DEFAULT_EVERYWHERE: &[&str] = &[
    "AQS_TIME_ZONE",
    "AQS_EVENTS_TOPIC",
    "AQS_REFERENCE_TOPIC",
    "AQS_DEAD_LETTER_TOPIC",
    "AQS_EVENTS_PARTITIONS",
    "AQS_PROJECTOR_GROUP",
    "AQS_CLICKHOUSE_DATABASE",
];
const INGEST_PORT: u16 = 8080;
/// Services that only read ClickHouse: they log in as the read-only user (the one Grafana
/// uses), not as the writer, so `AQS_CLICKHOUSE_USER` is the same among the writers only.
const CLICKHOUSE_READERS: &[&str] = &["dashboard"];

fn reads_only(workload: &Workload) -> bool {
    workload
        .subcommand
        .as_deref()
        .is_some_and(|s| CLICKHOUSE_READERS.contains(&s))
}

fn repo() -> PathBuf {
    PathBuf::from(manifest_dir())
}

fn deploy() -> PathBuf {
    repo().join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// All documents of a YAML file.
fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = read(path);
    serde_norway::Deserializer::from_str(&text)
        .map(|document| {
            <Value as serde::Deserialize>::deserialize(document)
                .unwrap_or_else(|error| panic!("{} does not parse: {error}", relative(path)))
        })
        .filter(|document| !document.is_null())
        .collect()
}

fn files_under(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if keep(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn is_yaml(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext == "yaml" || ext == "yml")
}

/// A scalar as text (`"12"` and `12` alike).
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Sequence(items)) => items.iter().filter_map(scalar).collect(),
        Some(Value::String(text)) => text.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |value, key| value.get(*key))
}

fn at_str<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path).and_then(Value::as_str)
}

/// Compose's `${VAR:-default}` / `${VAR-default}` / `${VAR}`: the default, or None.
fn compose_default(value: &str) -> Option<String> {
    let inner = value.strip_prefix("${")?.strip_suffix('}')?;
    let (_, default) = inner.split_once(":-").or_else(|| inner.split_once('-'))?;
    Some(default.to_owned())
}

/// The port of `host:port` or of a URL.
fn port_of(address: &str) -> Option<u16> {
    let rest = address.split_once("://").map_or(address, |(_, rest)| rest);
    let authority = rest.split('/').next()?;
    authority.rsplit_once(':')?.1.parse().ok()
}

fn host_of(address: &str) -> Option<&str> {
    let rest = address.split_once("://").map_or(address, |(_, rest)| rest);
    let authority = rest.split('/').next()?;
    Some(
        authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    )
}

/// What the CLI declares: `aqs env-vars --json`.
#[derive(Debug)]
struct Cli {
    /// Read by the process itself, whatever the subcommand.
    process: BTreeMap<String, Option<String>>,
    /// Subcommand to its variables and their defaults.
    subcommands: BTreeMap<String, BTreeMap<String, Option<String>>>,
}

impl Cli {
    fn load() -> Self {
        let output = Command::new(env!("CARGO_BIN_EXE_aqs"))
            .args(["env-vars", "--json"])
            .output()
            .expect("run aqs env-vars");
        assert!(
            output.status.success(),
            "aqs env-vars --json failed: {output:?}"
        );
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("aqs env-vars prints JSON");
        let vars = |list: &serde_json::Value| -> BTreeMap<String, Option<String>> {
            list.as_array()
                .expect("a list of variables")
                .iter()
                .map(|var| {
                    let env = var["env"].as_str().expect("env").to_owned();
                    (env, var["default"].as_str().map(str::to_owned))
                })
                .collect()
        };
        let process = vars(&report["process"]);
        let subcommands = report["subcommands"]
            .as_object()
            .expect("subcommands")
            .iter()
            .map(|(name, list)| (name.clone(), vars(list)))
            .collect();
        Self {
            process,
            subcommands,
        }
    }

    fn has(&self, subcommand: &str) -> bool {
        self.subcommands.contains_key(subcommand)
    }

    /// The variables a subcommand reads, process-wide ones included.
    fn reads(&self, subcommand: &str, var: &str) -> bool {
        self.process.contains_key(var)
            || self
                .subcommands
                .get(subcommand)
                .is_some_and(|vars| vars.contains_key(var))
    }

    /// Whether any subcommand (or the process) reads `var`.
    fn declares(&self, var: &str) -> bool {
        self.process.contains_key(var)
            || self.subcommands.values().any(|vars| vars.contains_key(var))
    }

    /// The default of `var` for any subcommand that declares it.
    fn defaults(&self, var: &str) -> BTreeSet<Option<String>> {
        self.subcommands
            .values()
            .filter_map(|vars| vars.get(var).cloned())
            .collect()
    }
}

/// An aqs container or Compose service.
#[derive(Debug, Clone)]
struct Workload {
    origin: String,
    image: String,
    subcommand: Option<String>,
    /// Variable to value; None when it comes from a Secret or cannot be resolved.
    env: BTreeMap<String, Option<String>>,
}

impl Workload {
    fn is_aqs(&self) -> bool {
        self.image.split(':').next() == Some("aqs")
    }
}

struct Compose {
    services: BTreeMap<String, Value>,
}

impl Compose {
    fn load() -> Self {
        let documents = yaml_documents(&deploy().join("compose.yaml"));
        assert_eq!(documents.len(), 1, "compose.yaml is one document");
        let services = documents[0]
            .get("services")
            .and_then(Value::as_mapping)
            .expect("compose.yaml has services")
            .iter()
            .map(|(name, service)| (scalar(name).expect("service name"), service.clone()))
            .collect();
        Self { services }
    }

    fn service(&self, name: &str) -> &Value {
        self.services
            .get(name)
            .unwrap_or_else(|| panic!("compose.yaml has no service {name}"))
    }

    fn env(service: &Value) -> BTreeMap<String, Option<String>> {
        let resolve = |value: &str| {
            if value.starts_with("${") {
                compose_default(value)
            } else {
                Some(value.to_owned())
            }
        };
        match service.get("environment") {
            Some(Value::Mapping(map)) => map
                .iter()
                .map(|(key, value)| {
                    let key = scalar(key).expect("variable name");
                    (key, scalar(value).and_then(|v| resolve(&v)))
                })
                .collect(),
            Some(Value::Sequence(items)) => items
                .iter()
                .filter_map(scalar)
                .map(|item| match item.split_once('=') {
                    Some((key, value)) => (key.to_owned(), resolve(value)),
                    None => (item, None),
                })
                .collect(),
            _ => BTreeMap::new(),
        }
    }

    fn workloads(&self) -> Vec<Workload> {
        self.services
            .iter()
            .map(|(name, service)| {
                let image = at_str(service, &["image"]).unwrap_or_default().to_owned();
                let command = string_list(service.get("command"));
                Workload {
                    origin: format!("deploy/compose.yaml service {name}"),
                    subcommand: command.first().cloned(),
                    image,
                    env: Self::env(service),
                }
            })
            .collect()
    }

    /// Container ports a service publishes or exposes.
    fn ports(service: &Value) -> BTreeSet<u16> {
        let mut ports = BTreeSet::new();
        for entry in string_list(service.get("expose")) {
            ports.insert(entry.parse().expect("expose entry is a port"));
        }
        for entry in string_list(service.get("ports")) {
            let container = entry.rsplit(':').next().expect("port mapping");
            let container = container.split('/').next().expect("port");
            ports.insert(container.parse().expect("container port"));
        }
        ports
    }

    /// Bind mounts of a service: (source relative to deploy/, target).
    fn binds(service: &Value) -> Vec<(String, String)> {
        string_list(service.get("volumes"))
            .into_iter()
            .filter(|volume| volume.starts_with("./") || volume.starts_with("../"))
            .map(|volume| {
                let mut parts = volume.split(':');
                let source = parts.next().expect("source").to_owned();
                let target = parts.next().expect("target").to_owned();
                (source, target)
            })
            .collect()
    }
}

/// The Kubernetes manifests.
struct K8s {
    /// (file, document)
    objects: Vec<(String, Value)>,
}

impl K8s {
    fn load() -> Self {
        let files = files_under(&deploy().join("k8s"), &|path| is_yaml(path));
        let objects = files
            .iter()
            .filter(|path| !path.ends_with("kustomization.yaml"))
            .flat_map(|path| {
                let name = relative(path);
                yaml_documents(path)
                    .into_iter()
                    .map(move |document| (name.clone(), document))
            })
            .collect();
        Self { objects }
    }

    fn of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.objects
            .iter()
            .map(|(_, object)| object)
            .filter(move |object| at_str(object, &["kind"]) == Some(kind))
    }

    fn named<'a>(&'a self, kind: &'a str, name: &str) -> Option<&'a Value> {
        self.of_kind(kind)
            .find(|object| at_str(object, &["metadata", "name"]) == Some(name))
    }

    fn config_map(&self, name: &str) -> BTreeMap<String, String> {
        let map = self
            .named("ConfigMap", name)
            .unwrap_or_else(|| panic!("no ConfigMap {name}"));
        at(map, &["data"])
            .and_then(Value::as_mapping)
            .map(|data| {
                data.iter()
                    .map(|(k, v)| (scalar(k).expect("key"), scalar(v).expect("value")))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn secret_keys(&self, name: &str) -> BTreeSet<String> {
        let Some(secret) = self.named("Secret", name) else {
            return BTreeSet::new();
        };
        ["data", "stringData"]
            .iter()
            .filter_map(|field| secret.get(*field).and_then(Value::as_mapping))
            .flat_map(|map| map.keys().filter_map(scalar))
            .collect()
    }

    /// (file, kind/name, pod spec) of every workload.
    fn pod_specs(&self) -> Vec<(String, String, &Value)> {
        self.objects
            .iter()
            .filter_map(|(file, object)| {
                let kind = at_str(object, &["kind"])?;
                let name = at_str(object, &["metadata", "name"])?;
                let spec = match kind {
                    "Deployment" | "StatefulSet" | "Job" | "DaemonSet" => {
                        at(object, &["spec", "template", "spec"])
                    }
                    "CronJob" => at(object, &["spec", "jobTemplate", "spec", "template", "spec"]),
                    _ => None,
                }?;
                Some((file.clone(), format!("{kind} {name}"), spec))
            })
            .collect()
    }

    fn workloads(&self) -> Vec<Workload> {
        let mut workloads = Vec::new();
        for (file, owner, spec) in self.pod_specs() {
            for container in at(spec, &["containers"])
                .and_then(Value::as_sequence)
                .expect("containers")
            {
                let name = at_str(container, &["name"]).unwrap_or("?");
                let mut args = string_list(container.get("command"));
                args.extend(string_list(container.get("args")));
                let mut env = BTreeMap::new();
                for entry in string_items(container.get("env")) {
                    let var = at_str(entry, &["name"]).expect("env name").to_owned();
                    let value = if let Some(value) = entry.get("value") {
                        scalar(value)
                    } else if let Some(reference) = at(entry, &["valueFrom", "configMapKeyRef"]) {
                        let map = at_str(reference, &["name"]).expect("configMap name");
                        let key = at_str(reference, &["key"]).expect("configMap key");
                        self.config_map(map).get(key).cloned()
                    } else {
                        None
                    };
                    env.insert(var, value);
                }
                workloads.push(Workload {
                    origin: format!("{file} {owner} container {name}"),
                    image: at_str(container, &["image"]).unwrap_or_default().to_owned(),
                    subcommand: args.first().cloned(),
                    env,
                });
            }
        }
        workloads
    }
}

fn string_items(value: Option<&Value>) -> Vec<&Value> {
    value
        .and_then(Value::as_sequence)
        .map(|items| items.iter().collect())
        .unwrap_or_default()
}

/// `ENV` settings of the Dockerfile.
fn dockerfile_env() -> BTreeMap<String, String> {
    let text = read(&deploy().join("Dockerfile")).replace("\\\n", " ");
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("ENV "))
        .flat_map(|rest| {
            rest.split_whitespace()
                .filter_map(|pair| pair.split_once('='))
                .map(|(key, value)| (key.to_owned(), value.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every `AQS_*` name in a text.
fn aqs_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(found) = text[i..].find("AQS_") {
        let start = i + found;
        let before_ok =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start + 4;
        while end < bytes.len()
            && (bytes[end].is_ascii_uppercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        if before_ok && end > start + 4 {
            names.insert(text[start..end].trim_end_matches('_').to_owned());
        }
        i = end;
    }
    names
}

/// The configuration table of deploy/README.md: each variable with the services it names.
fn readme_contract() -> BTreeMap<String, BTreeSet<String>> {
    let readme = read(&deploy().join("README.md"));
    let contract: BTreeMap<_, _> = readme
        .lines()
        .filter(|line| line.starts_with("| `AQS_"))
        .map(|line| {
            let cells: Vec<_> = line.split('|').map(str::trim).collect();
            let var = cells[1].trim_matches('`').to_owned();
            let services = cells[3]
                .split(',')
                .filter_map(|s| s.split_whitespace().next())
                .map(str::to_owned)
                .collect();
            (var, services)
        })
        .collect();
    assert!(
        contract.len() >= 10,
        "deploy/README.md has no configuration table: {contract:?}"
    );
    contract
}

/// Writes past the test harness's capture: these notes must be seen on every run.
fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

fn all_workloads() -> Vec<Workload> {
    let mut workloads = Compose::load().workloads();
    workloads.extend(K8s::load().workloads());
    workloads
}

fn aqs_workloads() -> Vec<Workload> {
    all_workloads()
        .into_iter()
        .filter(Workload::is_aqs)
        .collect()
}

#[test]
fn every_yaml_file_under_deploy_parses() {
    let files = files_under(&deploy(), &|path| is_yaml(path));
    assert!(
        files.len() >= 8,
        "expected the compose, k8s and grafana files: {files:?}"
    );
    for file in files {
        let documents = yaml_documents(&file);
        assert!(!documents.is_empty(), "{} is empty", relative(&file));
        if file.starts_with(deploy().join("k8s")) {
            for document in documents {
                assert!(
                    at_str(&document, &["apiVersion"]).is_some()
                        && at_str(&document, &["kind"]).is_some(),
                    "{}: a manifest without apiVersion or kind",
                    relative(&file)
                );
            }
        }
    }
}

#[test]
fn aqs_variables_in_deploy_are_declared_by_the_cli() {
    let cli = Cli::load();
    assert!(cli.has("migrate"), "`aqs migrate` must exist");
    let contract = readme_contract();
    let workloads = aqs_workloads();
    let mut problems = Vec::new();
    // Subcommands that do not exist yet, with the variables given to them.
    let mut pending: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // Existing subcommands that do not read yet a variable the README promises them.
    let mut not_read_yet: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut checked = BTreeSet::new();
    for workload in &workloads {
        let Some(subcommand) = &workload.subcommand else {
            problems.push(format!("{}: runs no subcommand", workload.origin));
            continue;
        };
        if !SERVICES.contains(&subcommand.as_str()) {
            problems.push(format!(
                "{}: unknown service `aqs {subcommand}`",
                workload.origin
            ));
        }
        let vars = workload.env.keys().filter(|var| var.starts_with("AQS_"));
        if cli.has(subcommand) {
            checked.insert(subcommand.clone());
            for var in vars {
                let promised = contract
                    .get(var)
                    .is_some_and(|services| services.contains(subcommand));
                if cli.reads(subcommand, var) {
                    continue;
                }
                if promised {
                    not_read_yet
                        .entry(subcommand.clone())
                        .or_default()
                        .insert(var.clone());
                } else {
                    problems.push(format!(
                        "{} gives {var} to `aqs {subcommand}`, which does not read it \
                         (fix the manifest or declare it in the CLI)",
                        workload.origin
                    ));
                }
            }
        } else {
            pending
                .entry(subcommand.clone())
                .or_default()
                .extend(vars.cloned());
        }
    }
    for service in SERVICES {
        let in_compose = workloads
            .iter()
            .any(|w| w.origin.contains("compose") && w.subcommand.as_deref() == Some(*service));
        let in_k8s = workloads
            .iter()
            .any(|w| w.origin.contains("k8s") && w.subcommand.as_deref() == Some(*service));
        if !(in_compose && in_k8s) {
            problems.push(format!(
                "`aqs {service}` must run in compose.yaml and in k8s/"
            ));
        }
    }

    // Any AQS_* name anywhere in the deployment files (scripts and comments included).
    let pending_vars: BTreeSet<_> = pending
        .values()
        .chain(not_read_yet.values())
        .flatten()
        .cloned()
        .collect();
    for var in contract.keys() {
        if !cli.declares(var) && !pending_vars.contains(var) {
            problems.push(format!(
                "deploy/README.md documents {var}, which no subcommand reads and no service receives"
            ));
        }
    }
    let texts = files_under(&deploy(), &|path| {
        !path.starts_with(deploy().join("test-services"))
            && path.extension().is_none_or(|ext| ext != "md")
    });
    for file in texts {
        for name in aqs_names(&read(&file)) {
            if !cli.declares(&name) && !pending_vars.contains(&name) {
                problems.push(format!(
                    "{} names {name}, which no subcommand reads and no pending service receives",
                    relative(&file)
                ));
            }
        }
    }
    // The Dockerfile's ENV applies to every subcommand.
    for var in dockerfile_env()
        .keys()
        .filter(|var| var.starts_with("AQS_"))
    {
        let readers: Vec<_> = cli
            .subcommands
            .iter()
            .filter(|(_, vars)| vars.contains_key(var))
            .map(|(name, _)| name.clone())
            .collect();
        if readers.is_empty() && !cli.process.contains_key(var) && !pending_vars.contains(var) {
            problems.push(format!("deploy/Dockerfile sets {var}, which nothing reads"));
        }
    }

    assert!(
        checked.contains("migrate"),
        "the migrate workloads were not cross-checked"
    );
    if !pending.is_empty() {
        let mut report = String::from(
            "deploy manifests: NOT YET CROSS-CHECKED against the CLI (subcommand does not exist yet):",
        );
        for (subcommand, vars) in &pending {
            let vars: Vec<_> = vars.iter().map(String::as_str).collect();
            report.push_str(&format!("\n  aqs {subcommand}: {}", vars.join(", ")));
        }
        note(&report);
    }
    if !not_read_yet.is_empty() {
        let mut report = String::from(
            "deploy manifests: NOT YET READ by their subcommand (promised by deploy/README.md):",
        );
        for (subcommand, vars) in &not_read_yet {
            let vars: Vec<_> = vars.iter().map(String::as_str).collect();
            report.push_str(&format!("\n  aqs {subcommand}: {}", vars.join(", ")));
        }
        note(&report);
    }
    note(&format!(
        "deploy manifests: cross-checked against the CLI: {}",
        checked
            .iter()
            .map(|s| format!("aqs {s}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn migrate_workloads_get_every_clickhouse_setting() {
    let migrate: Vec<_> = aqs_workloads()
        .into_iter()
        .filter(|w| w.subcommand.as_deref() == Some("migrate"))
        .collect();
    assert!(
        migrate.len() >= 2,
        "compose and k8s both run migrate: {migrate:?}"
    );
    for workload in migrate {
        for var in [
            "AQS_CLICKHOUSE_URL",
            "AQS_CLICKHOUSE_USER",
            "AQS_CLICKHOUSE_PASSWORD",
            "AQS_CLICKHOUSE_DATABASE",
        ] {
            assert!(
                workload.env.contains_key(var),
                "{} lacks {var}",
                workload.origin
            );
        }
        let url = workload.env["AQS_CLICKHOUSE_URL"]
            .clone()
            .unwrap_or_else(|| panic!("{}: AQS_CLICKHOUSE_URL unresolved", workload.origin));
        assert!(
            url.starts_with("http://") || url.starts_with("https://"),
            "{url}"
        );
        assert_eq!(
            port_of(&url),
            Some(8123),
            "{}: ClickHouse HTTP port",
            workload.origin
        );
    }
}

#[test]
fn settings_agree_across_compose_k8s_docker_readme_and_the_cli() {
    let cli = Cli::load();
    let workloads = all_workloads();
    let mut problems = Vec::new();
    let mut values: BTreeMap<&str, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for workload in &workloads {
        for var in SAME_EVERYWHERE {
            if *var == "AQS_CLICKHOUSE_USER" && reads_only(workload) {
                continue;
            }
            if let Some(Some(value)) = workload.env.get(*var) {
                values
                    .entry(var)
                    .or_default()
                    .entry(value.clone())
                    .or_default()
                    .push(workload.origin.clone());
            }
        }
    }
    for (var, value) in dockerfile_env() {
        if let Some(var) = SAME_EVERYWHERE.iter().find(|v| **v == var) {
            values
                .entry(var)
                .or_default()
                .entry(value)
                .or_default()
                .push("deploy/Dockerfile".to_owned());
        }
    }
    // create-topics.sh: ${AQS_X:-default}
    let script = read(&deploy().join("kafka/create-topics.sh"));
    for var in SAME_EVERYWHERE {
        let pattern = format!("${{{var}:-");
        for (start, _) in script.match_indices(&pattern) {
            let rest = &script[start + pattern.len()..];
            let default = &rest[..rest.find('}').expect("closing brace")];
            values
                .entry(var)
                .or_default()
                .entry(default.to_owned())
                .or_default()
                .push("deploy/kafka/create-topics.sh".to_owned());
        }
    }
    for var in SAME_EVERYWHERE {
        match values.get(var) {
            None => problems.push(format!("{var} is set nowhere in deploy/")),
            Some(found) if found.len() > 1 => {
                problems.push(format!("{var} has different values: {found:?}"));
            }
            Some(_) => {}
        }
    }
    let value = |var: &str| -> String {
        values
            .get(var)
            .and_then(|found| found.keys().next())
            .cloned()
            .unwrap_or_default()
    };

    for var in DEFAULT_EVERYWHERE {
        for default in cli.defaults(var) {
            if default.as_deref() != Some(value(var).as_str()) {
                problems.push(format!(
                    "{var}: the CLI's default is {default:?}, deploy/ sets {:?}",
                    value(var)
                ));
            }
        }
    }
    for default in cli.defaults("AQS_INGEST_LISTEN") {
        let port = default.as_deref().and_then(port_of);
        if port != Some(INGEST_PORT) {
            problems.push(format!(
                "AQS_INGEST_LISTEN defaults to {default:?}, not port {INGEST_PORT}"
            ));
        }
    }

    let readme = read(&deploy().join("README.md"));
    // The README's configuration table states the CLI's defaults.
    for line in readme.lines().filter(|line| line.starts_with("| `AQS_")) {
        let cells: Vec<_> = line.split('|').map(str::trim).collect();
        let var = cells[1].trim_matches('`');
        let documented = if let Some(rest) = cells[2].strip_prefix('`') {
            Some(rest.split('`').next().unwrap_or_default().to_owned())
        } else if cells[2].starts_with("unset") {
            None
        } else {
            continue;
        };
        for default in cli.defaults(var) {
            if default != documented {
                problems.push(format!(
                    "deploy/README.md gives {var} the default {documented:?}, the CLI {default:?}"
                ));
            }
        }
    }
    for var in [
        "AQS_EVENTS_TOPIC",
        "AQS_REFERENCE_TOPIC",
        "AQS_DEAD_LETTER_TOPIC",
    ] {
        let topic = value(var);
        if !readme.contains(&format!("`{topic}`")) {
            problems.push(format!(
                "deploy/README.md does not describe topic {topic} ({var})"
            ));
        }
    }
    let partitions = value("AQS_EVENTS_PARTITIONS");
    let events_row = format!("| `{}` | {partitions} |", value("AQS_EVENTS_TOPIC"));
    if !readme.contains(&events_row) {
        problems.push(format!("deploy/README.md topic table lacks {events_row:?}"));
    }
    if !script.contains("-1") || !readme.contains("retention.ms=-1") {
        problems.push("event topics must be kept forever (retention.ms=-1)".to_owned());
    }

    let k8s = K8s::load();
    let partitions: u64 = partitions
        .parse()
        .expect("AQS_EVENTS_PARTITIONS is a number");
    let projector = k8s
        .named("StatefulSet", "aqs-projector")
        .or_else(|| k8s.named("Deployment", "aqs-projector"))
        .expect("a projector workload");
    let replicas = at(projector, &["spec", "replicas"])
        .and_then(Value::as_u64)
        .expect("replicas");
    if replicas == 0 || replicas > partitions {
        problems.push(format!(
            "projector replicas {replicas} must be 1..={partitions} (the partitions)"
        ));
    }
    for cronjob in k8s.of_kind("CronJob") {
        let zone = at_str(cronjob, &["spec", "timeZone"]).unwrap_or_default();
        if zone != value("AQS_TIME_ZONE") {
            problems.push(format!(
                "CronJob time zone {zone:?} differs from AQS_TIME_ZONE"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn ports_and_addresses_agree() {
    let cli = Cli::load();
    let compose = Compose::load();
    let k8s = K8s::load();
    let workloads = all_workloads();
    let mut problems = Vec::new();

    // Ingest: 8080 everywhere.
    for workload in workloads
        .iter()
        .filter(|w| w.subcommand.as_deref() == Some("ingest"))
    {
        let listen = workload.env.get("AQS_INGEST_LISTEN").cloned().flatten();
        if listen.as_deref().and_then(port_of) != Some(INGEST_PORT) {
            problems.push(format!(
                "{}: AQS_INGEST_LISTEN {listen:?} is not port {INGEST_PORT}",
                workload.origin
            ));
        }
    }
    if !Compose::ports(compose.service("ingest")).contains(&INGEST_PORT) {
        problems.push(format!("compose ingest does not publish {INGEST_PORT}"));
    }
    if !read(&deploy().join("Dockerfile"))
        .lines()
        .any(|l| l.trim() == format!("EXPOSE {INGEST_PORT}"))
    {
        problems.push(format!("Dockerfile does not EXPOSE {INGEST_PORT}"));
    }
    let ingest_spec = k8s
        .pod_specs()
        .into_iter()
        .find(|(_, owner, _)| owner == "Deployment aqs-ingest")
        .map(|(_, _, spec)| spec)
        .expect("Deployment aqs-ingest");
    let container_ports: BTreeMap<String, u64> = string_items(at(ingest_spec, &["containers"]))
        .into_iter()
        .flat_map(|c| string_items(c.get("ports")))
        .map(|p| {
            (
                at_str(p, &["name"]).unwrap_or_default().to_owned(),
                at(p, &["containerPort"])
                    .and_then(Value::as_u64)
                    .expect("containerPort"),
            )
        })
        .collect();
    if !container_ports
        .values()
        .any(|p| *p == u64::from(INGEST_PORT))
    {
        problems.push(format!(
            "k8s ingest container does not declare port {INGEST_PORT}"
        ));
    }
    let service = k8s
        .named("Service", "aqs-ingest")
        .expect("Service aqs-ingest");
    for port in string_items(at(service, &["spec", "ports"])) {
        let exposed = at(port, &["port"]).and_then(Value::as_u64);
        let target = match at(port, &["targetPort"]) {
            Some(Value::String(name)) => container_ports.get(name).copied(),
            Some(value) => value.as_u64(),
            None => exposed,
        };
        if exposed != Some(u64::from(INGEST_PORT)) || target != Some(u64::from(INGEST_PORT)) {
            problems.push(format!(
                "Service aqs-ingest maps {exposed:?} to {target:?}, not {INGEST_PORT} to {INGEST_PORT}"
            ));
        }
    }
    for default in cli.defaults("AQS_INGEST_LISTEN") {
        if default.as_deref().and_then(port_of) != Some(INGEST_PORT) {
            problems.push(format!(
                "the CLI's AQS_INGEST_LISTEN default {default:?} is not port {INGEST_PORT}"
            ));
        }
    }

    // Compose: the addresses the aqs services use point at services that listen there.
    for workload in Compose::load().workloads().iter().filter(|w| w.is_aqs()) {
        for var in ["AQS_CLICKHOUSE_URL", "AQS_KAFKA_BROKERS"] {
            let Some(Some(address)) = workload.env.get(var) else {
                continue;
            };
            for address in address.split(',') {
                let host = host_of(address).unwrap_or_default();
                let port = port_of(address).unwrap_or_default();
                match compose.services.get(host) {
                    Some(target) if Compose::ports(target).contains(&port) => {}
                    _ => problems.push(format!(
                        "{}: {var}={address}, but no compose service {host} exposes {port}",
                        workload.origin
                    )),
                }
            }
        }
    }
    let kafka_env = Compose::env(compose.service("kafka"));
    let brokers = Compose::env(compose.service("ingest"))
        .get("AQS_KAFKA_BROKERS")
        .cloned()
        .flatten()
        .unwrap_or_default();
    let advertised = kafka_env
        .get("KAFKA_ADVERTISED_LISTENERS")
        .cloned()
        .flatten()
        .unwrap_or_default();
    if !advertised
        .split(',')
        .any(|listener| listener.ends_with(&format!("://{brokers}")))
    {
        problems.push(format!(
            "kafka advertises {advertised:?}, the services use {brokers:?}"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn images_are_the_aqs_image_of_this_version() {
    let expected = format!("aqs:{}", env!("CARGO_PKG_VERSION"));
    let mut problems = Vec::new();
    let workloads = all_workloads();
    for workload in &workloads {
        let runs_aqs = workload
            .subcommand
            .as_deref()
            .is_some_and(|s| SERVICES.contains(&s));
        if runs_aqs && workload.image != expected {
            problems.push(format!(
                "{}: image {} (expected {expected})",
                workload.origin, workload.image
            ));
        }
    }
    let compose = Compose::load();
    for (name, service) in &compose.services {
        if at_str(service, &["image"]).is_some_and(|image| image.starts_with("aqs:")) {
            let context = at_str(service, &["build", "context"]).unwrap_or_default();
            let dockerfile = at_str(service, &["build", "dockerfile"]).unwrap_or_default();
            let path = deploy().join(context).join(dockerfile);
            if !path.is_file()
                || deploy().join(context).canonicalize().ok() != repo().canonicalize().ok()
            {
                problems.push(format!(
                    "compose service {name}: build {context}/{dockerfile} is not deploy/Dockerfile with the repository as context"
                ));
            }
        }
    }
    let dockerfile = read(&deploy().join("Dockerfile"));
    if !dockerfile.contains(r#"ENTRYPOINT ["/usr/local/bin/aqs"]"#)
        || !dockerfile.contains("cargo build --release --locked --bin aqs")
    {
        problems
            .push("Dockerfile must build the aqs binary and use it as the entrypoint".to_owned());
    }
    // The builder's Rust is at least the workspace's rust-version.
    let manifest = read(&repo().join("Cargo.toml"));
    let wanted = manifest
        .lines()
        .find_map(|line| line.trim().strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_owned())
        .expect("rust-version in Cargo.toml");
    let builder = dockerfile
        .lines()
        .find_map(|line| line.trim().strip_prefix("FROM rust:"))
        .and_then(|rest| rest.split(['-', ' ']).next())
        .expect("FROM rust:VERSION");
    let version =
        |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().expect("number")).collect() };
    if version(builder) < version(&wanted) {
        problems.push(format!(
            "Dockerfile builds with Rust {builder}, the workspace needs {wanted}"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn kubernetes_references_resolve() {
    let k8s = K8s::load();
    let mut problems = Vec::new();
    let namespace = "aqs";
    assert!(
        k8s.named("Namespace", namespace).is_some(),
        "Namespace {namespace}"
    );
    for (file, object) in &k8s.objects {
        let kind = at_str(object, &["kind"]).unwrap_or_default();
        if kind != "Namespace" && at_str(object, &["metadata", "namespace"]) != Some(namespace) {
            problems.push(format!("{file}: {kind} is not in namespace {namespace}"));
        }
    }
    for (file, owner, spec) in k8s.pod_specs() {
        let secret_volumes: BTreeMap<String, String> = string_items(spec.get("volumes"))
            .into_iter()
            .filter_map(|v| {
                Some((
                    at_str(v, &["name"])?.to_owned(),
                    at_str(v, &["secret", "secretName"])?.to_owned(),
                ))
            })
            .collect();
        for secret in secret_volumes.values() {
            if k8s.named("Secret", secret).is_none() {
                problems.push(format!("{file} {owner}: no Secret {secret}"));
            }
        }
        for container in string_items(spec.get("containers")) {
            let mut mounts = BTreeMap::new();
            for mount in string_items(container.get("volumeMounts")) {
                let volume = at_str(mount, &["name"]).unwrap_or_default();
                let path = at_str(mount, &["mountPath"]).unwrap_or_default();
                mounts.insert(path.to_owned(), volume.to_owned());
            }
            for entry in string_items(container.get("env")) {
                let var = at_str(entry, &["name"]).unwrap_or_default();
                if let Some(reference) = at(entry, &["valueFrom", "configMapKeyRef"]) {
                    let map = at_str(reference, &["name"]).unwrap_or_default();
                    let key = at_str(reference, &["key"]).unwrap_or_default();
                    if k8s.named("ConfigMap", map).is_none()
                        || !k8s.config_map(map).contains_key(key)
                    {
                        problems.push(format!(
                            "{file} {owner}: {var} refers to missing {map}/{key}"
                        ));
                    }
                }
                if let Some(reference) = at(entry, &["valueFrom", "secretKeyRef"]) {
                    let secret = at_str(reference, &["name"]).unwrap_or_default();
                    let key = at_str(reference, &["key"]).unwrap_or_default();
                    if !k8s.secret_keys(secret).contains(key) {
                        problems.push(format!(
                            "{file} {owner}: {var} refers to missing Secret {secret}/{key}"
                        ));
                    }
                }
            }
            // A tokens file must be a key of a Secret mounted at its folder.
            let tokens = string_items(container.get("env"))
                .into_iter()
                .find(|e| at_str(e, &["name"]) == Some("AQS_INGEST_TOKENS_FILE"));
            if let Some(entry) = tokens {
                let path = match at(entry, &["valueFrom", "configMapKeyRef"]) {
                    Some(r) => k8s
                        .config_map(at_str(r, &["name"]).unwrap_or_default())
                        .get(at_str(r, &["key"]).unwrap_or_default())
                        .cloned()
                        .unwrap_or_default(),
                    None => at_str(entry, &["value"]).unwrap_or_default().to_owned(),
                };
                let (folder, file_name) = path.rsplit_once('/').expect("an absolute path");
                let secret = mounts
                    .get(folder)
                    .and_then(|volume| secret_volumes.get(volume));
                if !secret.is_some_and(|secret| k8s.secret_keys(secret).contains(file_name)) {
                    problems.push(format!(
                        "{file} {owner}: AQS_INGEST_TOKENS_FILE {path} is not a key of a Secret mounted at {folder}"
                    ));
                }
            }
        }
    }
    // Selectors select the pods of a workload; StatefulSets name a headless Service.
    let mut pod_labels = Vec::new();
    for object in k8s.of_kind("Deployment").chain(k8s.of_kind("StatefulSet")) {
        let name = at_str(object, &["metadata", "name"]).unwrap_or_default();
        let labels = labels_of(at(object, &["spec", "template", "metadata", "labels"]));
        let selector = labels_of(at(object, &["spec", "selector", "matchLabels"]));
        if selector.is_empty() || !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
            problems.push(format!(
                "{name}: selector {selector:?} does not match its pods {labels:?}"
            ));
        }
        pod_labels.push((name.to_owned(), labels));
    }
    for service in k8s.of_kind("Service") {
        let name = at_str(service, &["metadata", "name"]).unwrap_or_default();
        let selector = labels_of(at(service, &["spec", "selector"]));
        let matches = pod_labels.iter().any(|(_, labels)| {
            !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
        });
        if !matches {
            problems.push(format!("Service {name} selects no pods"));
        }
    }
    for set in k8s.of_kind("StatefulSet") {
        let service = at_str(set, &["spec", "serviceName"]).unwrap_or_default();
        let headless = k8s
            .named("Service", service)
            .and_then(|s| at_str(s, &["spec", "clusterIP"]))
            == Some("None");
        if !headless {
            problems.push(format!(
                "StatefulSet serviceName {service} is not a headless Service"
            ));
        }
    }
    // kustomization.yaml lists every manifest.
    let kustomization = yaml_documents(&deploy().join("k8s/kustomization.yaml"));
    let listed: BTreeSet<String> = string_list(kustomization[0].get("resources"))
        .into_iter()
        .collect();
    let present: BTreeSet<String> = files_under(&deploy().join("k8s"), &|path| is_yaml(path))
        .iter()
        .filter_map(|path| path.file_name()?.to_str().map(str::to_owned))
        .filter(|name| name != "kustomization.yaml")
        .collect();
    if listed != present {
        problems.push(format!(
            "kustomization.yaml lists {listed:?}, the folder has {present:?}"
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn labels_of(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_mapping)
        .map(|map| {
            map.iter()
                .filter_map(|(k, v)| Some((scalar(k)?, scalar(v)?)))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn compose_files_grafana_and_clickhouse_users_fit_together() {
    let compose = Compose::load();
    let mut problems = Vec::new();
    for (name, service) in &compose.services {
        for (source, _) in Compose::binds(service) {
            if !deploy().join(&source).exists() {
                problems.push(format!("compose service {name} mounts missing {source}"));
            }
        }
        if let Some(Value::Mapping(depends)) = service.get("depends_on") {
            for dependency in depends.keys().filter_map(scalar) {
                if !compose.services.contains_key(&dependency) {
                    problems.push(format!(
                        "compose service {name} depends on unknown {dependency}"
                    ));
                }
            }
        }
    }

    let grafana = compose.service("grafana");
    let grafana_env = Compose::env(grafana);
    let mount = |source: &str| -> Option<String> {
        Compose::binds(grafana)
            .into_iter()
            .find(|(from, _)| from.trim_end_matches('/') == source)
            .map(|(_, to)| to)
    };
    if mount("./grafana/provisioning").as_deref() != Some("/etc/grafana/provisioning") {
        problems.push(
            "grafana must mount ./grafana/provisioning at /etc/grafana/provisioning".to_owned(),
        );
    }
    let providers = yaml_documents(&deploy().join("grafana/provisioning/dashboards/aqs.yaml"));
    let dashboards_path = string_items(providers[0].get("providers"))
        .first()
        .and_then(|p| at_str(p, &["options", "path"]))
        .map(str::to_owned);
    if dashboards_path.is_none() || mount("./grafana/dashboards") != dashboards_path {
        problems.push(format!(
            "the dashboards provider reads {dashboards_path:?}, compose mounts ./grafana/dashboards at {:?}",
            mount("./grafana/dashboards")
        ));
    }

    let datasources =
        yaml_documents(&deploy().join("grafana/provisioning/datasources/clickhouse.yaml"));
    let datasource = string_items(datasources[0].get("datasources"))
        .into_iter()
        .next()
        .expect("a data source")
        .clone();
    let plugin = at_str(&datasource, &["type"]).unwrap_or_default();
    let plugins = grafana_env
        .get("GF_INSTALL_PLUGINS")
        .cloned()
        .flatten()
        .unwrap_or_default();
    if !plugins
        .split(',')
        .any(|p| p.trim().split('@').next() == Some(plugin))
    {
        problems.push(format!(
            "data source type {plugin} is not in GF_INSTALL_PLUGINS {plugins:?}"
        ));
    }
    let host = at_str(&datasource, &["jsonData", "host"]).unwrap_or_default();
    let port = at(&datasource, &["jsonData", "port"])
        .and_then(Value::as_u64)
        .unwrap_or_default();
    let protocol = at_str(&datasource, &["jsonData", "protocol"]).unwrap_or_default();
    let clickhouse_ports = compose
        .services
        .get(host)
        .map(Compose::ports)
        .unwrap_or_default();
    if !(protocol == "http" && port == 8123 && clickhouse_ports.contains(&8123)) {
        problems.push(format!(
            "data source {protocol}://{host}:{port} is not the compose ClickHouse's HTTP port (8123)"
        ));
    }
    let clickhouse_env = Compose::env(compose.service("clickhouse"));
    let database = clickhouse_env
        .get("CLICKHOUSE_DB")
        .cloned()
        .flatten()
        .unwrap_or_default();
    if at_str(&datasource, &["jsonData", "defaultDatabase"]) != Some(database.as_str()) {
        problems.push(format!(
            "data source database differs from CLICKHOUSE_DB {database}"
        ));
    }
    let reader = at_str(&datasource, &["jsonData", "username"]).unwrap_or_default();
    let init = files_under(&deploy().join("compose/clickhouse-init"), &|_| true)
        .iter()
        .map(|path| read(path))
        .collect::<String>();
    if !init.contains(&format!("CREATE USER IF NOT EXISTS {reader} ")) || !init.contains("readonly")
    {
        problems.push(format!(
            "the read-only user {reader} of Grafana is not created by compose/clickhouse-init"
        ));
    }
    let password = at_str(&datasource, &["secureJsonData", "password"]).unwrap_or_default();
    let password_var = password
        .trim_start_matches("${")
        .trim_start_matches('$')
        .trim_end_matches('}');
    if !grafana_env.contains_key(password_var) || !clickhouse_env.contains_key(password_var) {
        problems.push(format!(
            "the reader password {password_var} must reach both grafana and clickhouse"
        ));
    }

    // Ingest's tokens file is mounted where AQS_INGEST_TOKENS_FILE says, from a file the
    // operator must name (a required variable: the demo tokens are an explicit opt-in); the
    // demo tokens file it points to holds digests.
    let ingest = compose.service("ingest");
    let tokens_path = Compose::env(ingest)
        .get("AQS_INGEST_TOKENS_FILE")
        .cloned()
        .flatten()
        .unwrap_or_default();
    let tokens_mount = string_list(ingest.get("volumes"))
        .into_iter()
        .find_map(|volume| {
            let (from, rest) = volume.rsplit_once(":/")?;
            let to = format!("/{}", rest.split(':').next().unwrap_or_default());
            (to == tokens_path).then(|| from.to_owned())
        });
    let demo_tokens = tokens_mount.as_deref().and_then(|from| {
        let required = from.strip_prefix("${")?.split_once(":?")?;
        required
            .1
            .split_whitespace()
            .find(|word| word.starts_with("./"))
            .map(|file| {
                file.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                    .to_owned()
            })
    });
    match (&tokens_mount, demo_tokens) {
        (None, _) => problems.push(format!(
            "compose ingest: nothing mounted at {tokens_path:?}"
        )),
        (Some(from), None) => problems.push(format!(
            "compose ingest mounts its tokens from {from:?}: it must be a required variable \
             (${{VAR:?...}}) whose message names the demo tokens file, so that the documented \
             demo tokens are never used without asking for them"
        )),
        (Some(_), Some(from)) => {
            // Read as ingest reads it; every source's documented demo token (`demo-` and
            // its name) opens it, and each source is granted explicitly.
            match aqs_ingest::auth::Tokens::from_json(&read(&deploy().join(&from))) {
                Err(error) => problems.push(format!("{from}: not a tokens file: {error}")),
                Ok(tokens) => {
                    for source in tokens.sources() {
                        if tokens
                            .source_of(&format!("demo-{source}"))
                            .is_none_or(|access| access.source != source)
                        {
                            problems.push(format!(
                                "{from}: the documented demo token demo-{source} does not open \
                                 source {source}"
                            ));
                        }
                    }
                    let implicit = tokens.implicitly_granted();
                    if !implicit.is_empty() {
                        problems.push(format!(
                            "{from}: sources without explicit grants: {implicit:?}"
                        ));
                    }
                }
            }
        }
    }

    // The writer the aqs services log in as is the user the ClickHouse image creates.
    let writer = clickhouse_env
        .get("CLICKHOUSE_USER")
        .cloned()
        .flatten()
        .unwrap_or_default();
    let writer_password = clickhouse_env.get("CLICKHOUSE_PASSWORD").cloned().flatten();
    // Readers log in as Grafana's read-only user, with the reader password.
    let reader_password = clickhouse_env.get(password_var).cloned().flatten();
    for workload in compose.workloads().iter().filter(|w| w.is_aqs()) {
        let (writer, writer_password) = if reads_only(workload) {
            (reader.to_owned(), reader_password.clone())
        } else {
            (writer.clone(), writer_password.clone())
        };
        if let Some(Some(user)) = workload.env.get("AQS_CLICKHOUSE_USER") {
            if *user != writer {
                problems.push(format!(
                    "{}: ClickHouse user {user}, the server creates {writer}",
                    workload.origin
                ));
            }
            if workload
                .env
                .get("AQS_CLICKHOUSE_PASSWORD")
                .cloned()
                .flatten()
                != writer_password
            {
                problems.push(format!(
                    "{}: ClickHouse password default differs from the server's",
                    workload.origin
                ));
            }
        }
        if let Some(Some(db)) = workload.env.get("AQS_CLICKHOUSE_DATABASE")
            && *db != database
        {
            problems.push(format!(
                "{}: database {db}, the server creates {database}",
                workload.origin
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn compose_publishes_ports_on_loopback_only() {
    // Published on every interface, a service is on whatever network the host is on:
    // ingest with the documented demo tokens, or ClickHouse, would be open to it.
    let compose = Compose::load();
    let mut problems = Vec::new();
    for (name, service) in &compose.services {
        for entry in string_list(service.get("ports")) {
            if !entry.starts_with("127.0.0.1:") {
                problems.push(format!(
                    "compose service {name} publishes {entry:?} beyond loopback; write \
                     \"127.0.0.1:{entry}\" and put a TLS proxy in front to expose it"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn deploy_shell_scripts_are_valid() {
    let scripts = files_under(&deploy(), &|path| {
        path.extension().is_some_and(|ext| ext == "sh")
            && !path.starts_with(deploy().join("test-services"))
    });
    assert!(!scripts.is_empty());
    for script in scripts {
        let text = read(&script);
        let shell = if text.starts_with("#!/bin/sh") {
            "sh"
        } else {
            "bash"
        };
        let status = Command::new(shell)
            .arg("-n")
            .arg(&script)
            .status()
            .unwrap_or_else(|e| panic!("{shell}: {e}"));
        assert!(
            status.success(),
            "{} has a syntax error ({shell} -n)",
            relative(&script)
        );
    }
}

#[test]
fn aqs_names_are_found_in_text() {
    let names =
        aqs_names("x ${AQS_CLICKHOUSE_PASSWORD:-y} AQS_LOG=info NOT_AQS_X `AQS_CLICKHOUSE_*` AQS_");
    let names: Vec<_> = names.iter().map(String::as_str).collect();
    assert_eq!(
        names,
        ["AQS_CLICKHOUSE", "AQS_CLICKHOUSE_PASSWORD", "AQS_LOG"]
    );
}

/// Every SQL text of a Grafana dashboard (panel queries and template variables), with the
/// title of its panel.
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(sql) = variable["query"].as_str() {
            queries.push((format!("variable {}", variable["name"]), sql.to_owned()));
        }
    }
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let sql = target["rawSql"].as_str().unwrap_or_default();
            queries.push((format!("panel {}", panel["title"]), sql.to_owned()));
        }
    }
    queries
}

fn dashboards() -> Vec<(PathBuf, serde_json::Value)> {
    files_under(&deploy().join("grafana/dashboards"), &|path| {
        path.extension().is_some_and(|ext| ext == "json")
    })
    .into_iter()
    .map(|path| {
        let dashboard = serde_json::from_str(&read(&path))
            .unwrap_or_else(|error| panic!("{} does not parse: {error}", relative(&path)));
        (path, dashboard)
    })
    .collect()
}

/// The dashboard's SQL as ClickHouse runs it: the plugin's macros and the template
/// variables replaced by what Grafana would send.
fn as_grafana_sends_it(sql: &str) -> String {
    let mut out = String::new();
    let mut rest = sql;
    while let Some(start) = rest.find("$__timeFilter(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "$__timeFilter(".len()..];
        let mut depth = 1;
        let end = after
            .char_indices()
            .find(|(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(at, _)| at)
            .expect("closed $__timeFilter(");
        let column = &after[..end];
        out.push_str(&format!(
            "{column} >= toDateTime(1704067200) AND {column} <= toDateTime(1893456000)"
        ));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out.replace("${region}", "R01")
        .replace("$__fromTime", "toDateTime(1704067200)")
        .replace("$__toTime", "toDateTime(1893456000)")
}

#[test]
fn grafana_dashboards_parse_and_query_only_the_kpi_contract() {
    let datasources =
        yaml_documents(&deploy().join("grafana/provisioning/datasources/clickhouse.yaml"));
    let uid = string_items(datasources[0].get("datasources"))
        .first()
        .and_then(|d| at_str(d, &["uid"]))
        .expect("the data source has a uid")
        .to_owned();
    let relations = ["kpi", "kpi_latest", "kpi_at_risk"];
    let mut known: BTreeSet<&str> = aqs_tables::kpi::columns::column_names().collect();
    known.extend(relations);
    known.insert("computed_at");
    let dashboards = dashboards();
    assert!(
        dashboards
            .iter()
            .any(|(path, _)| path.ends_with("aqs-overview.json")),
        "deploy/grafana/dashboards/aqs-overview.json exists"
    );
    let mut problems = Vec::new();
    let mut uids = BTreeSet::new();
    for (path, dashboard) in &dashboards {
        let file = relative(path);
        let dashboard_uid = dashboard["uid"].as_str().unwrap_or_default();
        if dashboard_uid.is_empty() || !uids.insert(dashboard_uid.to_owned()) {
            problems.push(format!("{file}: missing or repeated uid {dashboard_uid:?}"));
        }
        for panel in dashboard["panels"].as_array().into_iter().flatten() {
            if panel["type"] == "row" {
                continue;
            }
            let mut sources = vec![&panel["datasource"]];
            sources.extend(
                panel["targets"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| &t["datasource"]),
            );
            for source in sources {
                if source["uid"].as_str() != Some(uid.as_str()) {
                    problems.push(format!(
                        "{file}: panel {} uses data source {source}, not the provisioned {uid}",
                        panel["title"]
                    ));
                }
            }
        }
        let queries = dashboard_queries(dashboard);
        if queries.is_empty() {
            problems.push(format!("{file}: no queries"));
        }
        for (what, sql) in queries {
            // Without string literals (values, quoted aliases) and macros, every word with
            // an underscore must be a column of the KPI contract or one of its relations;
            // every FROM names one of the relations.
            let mut text = String::new();
            let mut quote = None;
            for c in as_grafana_sends_it(&sql).chars() {
                match quote {
                    Some(q) if c == q => quote = None,
                    Some(_) => {}
                    None if c == '\'' || c == '"' => quote = Some(c),
                    None => text.push(c),
                }
            }
            let words: Vec<&str> = text
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| !w.is_empty())
                .collect();
            for word in &words {
                if word.contains('_') && !known.contains(word) {
                    problems.push(format!(
                        "{file}: {what} names {word}, not in the KPI contract"
                    ));
                }
            }
            for pair in words.windows(2) {
                if pair[0].eq_ignore_ascii_case("from") && !relations.contains(&pair[1]) {
                    problems.push(format!(
                        "{file}: {what} reads {}, not a KPI relation",
                        pair[1]
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn grafana_dashboard_queries_run_on_clickhouse() {
    let Some(clickhouse) = aqs_testkit::clickhouse() else {
        return;
    };
    let config = aqs_warehouse::ClickHouseConfig::new(clickhouse.url())
        .with_credentials(clickhouse.user(), clickhouse.password())
        .with_database(clickhouse.fresh_database_name());
    let client = aqs_warehouse::BlockingClient::new(&config).expect("client");
    client
        .run(aqs_warehouse::migrate(&config))
        .expect("migrate");
    let mut failures = Vec::new();
    for (path, dashboard) in dashboards() {
        for (what, sql) in dashboard_queries(&dashboard) {
            let sql = as_grafana_sends_it(&sql);
            let result = client.run(async {
                client
                    .client()
                    .query_raw(&sql)
                    .fetch_bytes("TabSeparated")?
                    .collect()
                    .await
            });
            if let Err(error) = result {
                failures.push(format!("{}: {what}: {error}\n{sql}", relative(&path)));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The package's folder, read when the test runs (cargo sets it) rather than when it was
/// built: a build cache shared with a clone in another folder may hold this test built there.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned())
}
