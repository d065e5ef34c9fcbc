//! What an API caller may name as a component, and uploads: no host file
//! outside the components directory can be opened or probed through the
//! API, uploads register by digest, survive a restart, and are deleted only
//! when unused; a compile in flight does not hold up SIGTERM.

use std::time::{Duration, Instant};

use sandport_server::grpc::pb;
use sandport_server::grpc::pb::connectors_service_client::ConnectorsServiceClient;
use serde_json::{Value, json};
use tonic::Code;

use super::support::{SANDPORT, Server, Target, guest_wasm, temp_dir, write};

/// A running service with an empty config and a `components/` directory
/// beside it, and a REST client.
struct Setup {
    dir: std::path::PathBuf,
    server: Server,
    http: reqwest::Client,
}

impl Setup {
    fn start(name: &str, extra: &[&str]) -> Setup {
        let dir = temp_dir(name);
        std::fs::create_dir_all(dir.join("components")).expect("components dir");
        let config = write(&dir, "connectors.yaml", "connectors: []\n");
        let server = Server::start_with(&config, &dir.join("data"), extra);
        let _ = rustls::crypto::ring::default_provider().install_default();
        Setup {
            dir,
            server,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.http)
    }

    /// POSTs an `http` connector entry naming `component`; the status and
    /// the body.
    async fn register(&self, id: &str, component: &str, port: u16) -> (u16, Value) {
        let entry = json!({"id": id, "component": component, "host": "127.0.0.1", "port": port});
        let answer = self
            .http
            .post(self.url("/api/v1/connectors"))
            .json(&entry)
            .send()
            .await
            .expect("POST");
        let status = answer.status().as_u16();
        (status, answer.json().await.expect("a JSON answer"))
    }

    async fn upload(&self, bytes: Vec<u8>) -> (u16, Value) {
        let answer = self
            .http
            .put(self.url("/api/v1/components"))
            .body(bytes)
            .send()
            .await
            .expect("PUT");
        let status = answer.status().as_u16();
        (status, answer.json().await.expect("a JSON answer"))
    }
}

fn http_guest() -> Vec<u8> {
    let path = guest_wasm("sandport_connector_http");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test]
async fn an_api_caller_cannot_open_or_probe_a_file_outside_the_components_directory() {
    let setup = Setup::start("outside", &[]);
    let components = setup.dir.join("components");
    std::os::unix::fs::symlink("/etc/passwd", components.join("passwd.wasm")).expect("symlink");
    let fifo = components.join("fifo.wasm");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());

    for (component, says) in [
        ("/etc/passwd", "is absolute"),
        ("/proc/self/environ", "is absolute"),
        ("/dev/zero", "is absolute"),
        ("../connectors.yaml", "climbs out"),
        ("sub/../../connectors.yaml", "climbs out"),
        ("passwd.wasm", "leads out of the components directory"),
        ("fifo.wasm", "is not a regular file"),
    ] {
        let started = Instant::now();
        let (status, body) = setup.register("probe", component, 80).await;
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(status, 422, "{component}: {body}");
        assert!(message.contains(says), "{component}: {message}");
        for leak in ["root", "0x72", "PATH="] {
            assert!(
                !message.contains(leak),
                "{component} leaks {leak}: {message}"
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{component} took {:?}",
            started.elapsed()
        );
    }

    // The same refusal through gRPC.
    let mut grpc = ConnectorsServiceClient::connect(setup.server.grpc.clone())
        .await
        .expect("connect");
    let refused = grpc
        .register_connector(pb::RegisterConnectorRequest {
            config: Some(pb::ConnectorConfig {
                id: "probe".into(),
                component: "/etc/passwd".into(),
                host: "127.0.0.1".into(),
                port: 80,
                ..Default::default()
            }),
        })
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(!refused.message().contains("root"), "{}", refused.message());

    // A text file inside the directory is refused without quoting it.
    write(&components, "notes.wasm", "root:x:0:0:secret\n");
    let (status, body) = setup.register("notes", "notes.wasm", 80).await;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(status, 422, "{body}");
    assert!(message.contains("bad magic number"), "{message}");
    assert!(
        !message.contains("root") && !message.contains("0x72"),
        "{message}"
    );

    let list: Value = setup
        .http
        .get(setup.url("/api/v1/connectors"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(list, json!([]), "nothing was registered");
}

#[tokio::test]
async fn a_component_in_the_components_directory_registers_and_checks() {
    let target = Target::start(200);
    let setup = Setup::start("inside", &[]);
    let team = setup.dir.join("components/team");
    std::fs::create_dir_all(&team).expect("dir");
    std::fs::write(team.join("check.wasm"), http_guest()).expect("copy");
    let (status, body) = setup
        .register("web", "./team/check.wasm", target.port)
        .await;
    assert_eq!(status, 201, "{body}");
    let health: Value = setup
        .http
        .get(setup.url("/api/v1/connectors/web/health"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "healthy", "{health}");
}

#[tokio::test]
async fn an_upload_registers_by_digest_survives_a_restart_and_is_deleted_only_when_unused() {
    let target = Target::start(200);
    let setup = Setup::start("uploads", &[]);
    let bytes = http_guest();

    let (status, body) = setup
        .upload(b"root:x:0:0:root:/root:/bin/bash\n".to_vec())
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "not_a_component");
    assert!(!body.to_string().contains("root:x"), "{body}");

    let (status, body) = setup.upload(bytes.clone()).await;
    assert_eq!(status, 201, "{body}");
    let component = body["component"].as_str().expect("a name").to_string();
    assert!(component.starts_with("sha256:"), "{component}");
    assert_eq!(body["size"], bytes.len());

    // gRPC streams the same bytes in chunks and gets the same name.
    let mut grpc = ConnectorsServiceClient::connect(setup.server.grpc.clone())
        .await
        .expect("connect");
    let chunks: Vec<pb::UploadComponentRequest> = bytes
        .chunks(256 << 10)
        .map(|c| pb::UploadComponentRequest { chunk: c.to_vec() })
        .collect();
    let uploaded = grpc
        .upload_component(futures::stream::iter(chunks))
        .await
        .expect("uploaded")
        .into_inner()
        .component
        .expect("a component");
    assert_eq!(uploaded.component, component);

    let (status, body) = setup.register("web", &component, target.port).await;
    assert_eq!(status, 201, "{body}");
    let listed = grpc
        .list_components(pb::ListComponentsRequest {})
        .await
        .expect("listed")
        .into_inner()
        .components;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].used_by, ["web"]);

    let in_use = setup
        .http
        .delete(setup.url(&format!("/api/v1/components/{component}")))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(in_use.status(), 409);

    // The registration and the component outlive the process.
    let config = setup.dir.join("connectors.yaml");
    let data = setup.dir.join("data");
    setup.server.kill_9();
    let server = Server::start(&config, &data);
    let health: Value = setup
        .http
        .get(format!("{}/api/v1/connectors/web/health", server.http))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "healthy", "{health}");

    let removed = setup
        .http
        .delete(format!("{}/api/v1/connectors/web", server.http))
        .send()
        .await
        .expect("DELETE");
    assert_eq!(removed.status(), 204);
    let mut grpc = ConnectorsServiceClient::connect(server.grpc.clone())
        .await
        .expect("connect");
    grpc.delete_component(pb::DeleteComponentRequest {
        component: component.clone(),
    })
    .await
    .expect("deleted once unused");
    let gone = grpc
        .delete_component(pb::DeleteComponentRequest { component })
        .await
        .expect_err("already deleted");
    assert_eq!(gone.code(), Code::NotFound);
}

#[tokio::test]
async fn an_upload_past_the_size_limit_is_refused() {
    let setup = Setup::start("too-large", &["--max-component-size", "64KiB"]);
    let (status, body) = setup.upload(http_guest()).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("64 KiB")),
        "{body}"
    );
}

#[tokio::test]
async fn the_cli_uploads_the_component_file_an_entry_names_to_a_remote_service() {
    let target = Target::start(200);
    let setup = Setup::start("cli-upload", &[]);
    let wasm = setup.dir.join("my-check.wasm");
    std::fs::write(&wasm, http_guest()).expect("copy");
    let entry = write(
        &setup.dir,
        "entry.yaml",
        &format!(
            "id: mine\ncomponent: ./my-check.wasm\nhost: 127.0.0.1\nport: {}\n",
            target.port
        ),
    );
    let out = std::process::Command::new(SANDPORT)
        .args(["register", "--file"])
        .arg(&entry)
        .env("CONNECTORS_SERVICE_ADDR", &setup.server.grpc)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run sandport");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = setup
        .http
        .get(setup.url("/api/v1/connectors/mine"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json");
    let component = got["config"]["component"].as_str().unwrap_or_default();
    assert!(component.starts_with("sha256:"), "{got}");
    let out = std::process::Command::new(SANDPORT)
        .args(["component", "list"])
        .env("CONNECTORS_SERVICE_ADDR", &setup.server.grpc)
        .output()
        .expect("run sandport");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains(component) && listed.contains("mine"),
        "{listed}"
    );
}

/// A component the compiler takes long over: one core module of many large
/// functions.
fn slow_to_compile(functions: usize) -> Vec<u8> {
    let body: String = (0..300)
        .map(|i| format!("local.get 0 i32.const {i} i32.add local.set 0 "))
        .collect();
    let function = format!("(func (param i32) (result i32) {body} local.get 0)\n");
    wat::parse_str(format!(
        "(component (core module {}))",
        function.repeat(functions)
    ))
    .expect("valid component text")
}

#[tokio::test]
async fn sigterm_stops_the_service_within_the_drain_while_a_compile_runs() {
    let setup = Setup::start("compiling", &[]);
    // About 40 s of compiling on a 2-core machine (5 ms a function), far
    // past the drain.
    let (status, body) = setup.upload(slow_to_compile(8000)).await;
    assert_eq!(status, 201, "{body}");
    let component = body["component"].as_str().expect("a name").to_string();
    let Setup { server, http, .. } = setup;
    let url = format!("{}/api/v1/connectors", server.http);
    let registering = tokio::spawn(async move {
        let entry = json!({"id": "slow", "component": component, "host": "127.0.0.1", "port": 80});
        http.post(url).json(&entry).send().await
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !registering.is_finished(),
        "the compile ended before the signal"
    );
    let limit =
        sandport_server::DRAIN_GRACE + sandport_server::ANNOUNCE_SHUTDOWN + Duration::from_secs(3);
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || server.terminate(limit))
        .await
        .expect("joined");
    assert!(status.success(), "{status}");
    assert!(started.elapsed() <= limit, "{:?}", started.elapsed());
    registering.abort();
}
