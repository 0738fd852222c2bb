//! File storage through the real server: the upload URL flow with the official npm client, what
//! is refused (reused, expired or unknown upload URLs; oversized, disguised and unsupported files;
//! a bad digest; another company's files; tampered and expired download URLs), downloads with
//! `Range` and `ETag`, deletion, the sweep of what broken uploads and deletions leave, and the
//! access log; blobs in the data directory and in an S3-compatible bucket (moto's server, started
//! by the tests). SQLite, and PostgreSQL when TEST_DATABASE_URL is set.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{backends, Place, TestServer};
use serde_json::{json, Value as Json};
use tokio::io::AsyncWriteExt;

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde";
const ELF: &[u8] = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0>\0\x01\0\0\0";

fn npm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/npm")
}

fn ensure_client_installed() {
    let dir = npm_dir();
    if dir.join("node_modules/convex/package.json").exists() {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
        .current_dir(&dir)
        .status()
        .expect("npm is installed (Node.js 18 or newer is needed for this test)");
    assert!(status.success(), "npm ci failed in {}", dir.display());
}

async fn company(server: &TestServer, name: &str) -> String {
    let id = server
        .ok("mutation", "tenancy:createCompany", json!({ "name": name }))
        .await;
    id.as_str().unwrap().to_string()
}

async fn upload_url(server: &TestServer, company: &str) -> String {
    let url = server
        .ok(
            "mutation",
            "files:generateUploadUrl",
            json!({ "company": company }),
        )
        .await;
    url.as_str().unwrap().to_string()
}

async fn post(server: &TestServer, url: &str, content_type: &str, bytes: &[u8]) -> (u16, Json) {
    let response = server
        .http
        .post(url)
        .header("content-type", content_type)
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn upload(server: &TestServer, company: &str, content_type: &str, bytes: &[u8]) -> String {
    let url = upload_url(server, company).await;
    let (status, body) = post(server, &url, content_type, bytes).await;
    assert_eq!(status, 200, "{body}");
    body["storageId"].as_str().unwrap().to_string()
}

async fn download_url(server: &TestServer, company: &str, file: &str) -> Json {
    server
        .ok(
            "mutation",
            "files:getUrl",
            json!({ "company": company, "storageId": file }),
        )
        .await
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

async fn access_log(server: &TestServer) -> Vec<String> {
    let runtime = server.runtime();
    let (actions, _, _) = runtime
        .store()
        .query(|txn| {
            let rows = txn.query(functions::storage::ACCESS_LOG)?.collect()?;
            Ok::<_, store::StoreError>(
                rows.iter()
                    .map(|doc| doc.get("action").unwrap().as_str().unwrap().to_string())
                    .collect::<Vec<_>>(),
            )
        })
        .await
        .unwrap();
    actions
}

/// Runs the storage sweep now, sparing nothing for its age.
async fn sweep(server: &TestServer) -> Json {
    let outcome = server
        .runtime()
        .call(functions::Call {
            path: "storage:sweep".into(),
            expected: None,
            args: values::Value::Object(
                [("min_age_ms".to_string(), values::Value::Float64(0.0))].into(),
            ),
            auth: functions::Auth::anonymous(),
            request_id: functions::RequestId::generate(),
            caller: functions::Caller::Server,
        })
        .await
        .unwrap();
    values::Format::Clean.encode(&outcome.value)
}

#[tokio::test]
async fn the_official_client_uploads_and_downloads() {
    tokio::task::spawn_blocking(ensure_client_installed)
        .await
        .unwrap();
    let moto = Moto::start().await;
    moto.create_bucket("ss-npm").await;
    let in_bucket = [
        ("SUPPORTSIGNAL_STORAGE_URL", "s3://ss-npm"),
        ("AWS_ENDPOINT_URL", moto.url.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    let cases = backends()
        .into_iter()
        .flat_map(|db| [(db, &[][..]), (db, &in_bucket[..])]);
    for (db, env) in cases {
        let place = Place::new(db).await;
        let server = TestServer::start_with(&place, env).await;
        let company = company(&server, "Acme Care").await;
        let (url, c) = (server.url.clone(), company.clone());
        let out = tokio::task::spawn_blocking(move || {
            let output = Command::new("node")
                .args(["storage_client.mjs", &url, &c])
                .current_dir(npm_dir())
                .output()
                .expect("node runs");
            let stdout = String::from_utf8_lossy(&output.stdout).to_string();
            assert!(
                output.status.success(),
                "{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            serde_json::from_str::<Json>(stdout.lines().last().unwrap()).unwrap()
        })
        .await
        .unwrap();
        assert_eq!(
            out["uploadUrlShape"], "ORIGIN/api/storage/upload?token=T",
            "{db:?}"
        );
        assert_eq!(out["uploadStatus"], 200);
        let id = out["storageId"].as_str().unwrap();
        assert_eq!(out["metadata"]["storageId"], id);
        assert_eq!(out["metadata"]["contentType"], "text/plain");
        let size = "Incident photo stand-in: plain text, café ☕\n".len() * 50;
        assert_eq!(out["metadata"]["size"], size as f64);
        assert_eq!(out["downloadStatus"], 200);
        assert_eq!(out["contentType"], "text/plain");
        assert_eq!(out["sameBytes"], true);
        assert_eq!(out["reuse"]["status"], 403);
        assert_eq!(out["reuse"]["body"]["code"], "InvalidUploadUrl");
        assert_eq!(
            access_log(&server).await,
            ["upload", "url_issued", "download"]
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn downloads_serve_ranges_and_etags_and_refuse_tampering() {
    for db in backends() {
        let place = Place::new(db).await;
        let server = TestServer::start(&place).await;
        let company = company(&server, "Acme Care").await;
        let bytes: Vec<u8> = PNG
            .iter()
            .copied()
            .chain((0..5000u32).map(|i| i as u8))
            .collect();
        let file = upload(&server, &company, "image/png", &bytes).await;
        let url = download_url(&server, &company, &file).await;
        let url = url.as_str().unwrap();

        let whole = server.http.get(url).send().await.unwrap();
        assert_eq!(whole.status(), 200, "{db:?}");
        let etag = whole.headers()["etag"].to_str().unwrap().to_string();
        assert_eq!(whole.headers()["content-type"], "image/png");
        assert_eq!(whole.headers()["accept-ranges"], "bytes");
        assert!(whole.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment"));
        assert_eq!(whole.bytes().await.unwrap().as_ref(), &bytes[..]);

        let part = server
            .http
            .get(url)
            .header("range", "bytes=10-19")
            .send()
            .await
            .unwrap();
        assert_eq!(part.status(), 206);
        assert_eq!(
            part.headers()["content-range"],
            format!("bytes 10-19/{}", bytes.len()).as_str()
        );
        assert_eq!(part.bytes().await.unwrap().as_ref(), &bytes[10..20]);
        let tail = server
            .http
            .get(url)
            .header("range", "bytes=-7")
            .send()
            .await
            .unwrap();
        assert_eq!(
            tail.bytes().await.unwrap().as_ref(),
            &bytes[bytes.len() - 7..]
        );
        let beyond = server
            .http
            .get(url)
            .header("range", format!("bytes={}-", bytes.len()))
            .send()
            .await
            .unwrap();
        assert_eq!(beyond.status(), 416);
        let cached = server
            .http
            .get(url)
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(cached.status(), 304);

        // Any change to the signed URL, or no signature, finds nothing.
        let tampered = [
            url.replace("sig=", "sig=A"),
            url.replace("exp=", "exp=9"),
            url.replace("by=tester", "by=someone"),
            url.split('?').next().unwrap().to_string(),
        ];
        for bad in tampered {
            let response = server.http.get(&bad).send().await.unwrap();
            assert_eq!(response.status(), 404, "{bad}");
            let body: Json = response.json().await.unwrap();
            assert_eq!(body["code"], "FileNotFound");
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn refusals_have_clear_codes_and_leave_nothing_behind() {
    for db in backends() {
        let place = Place::new(db).await;
        let server =
            TestServer::start_with(&place, &[("SUPPORTSIGNAL_MAX_UPLOAD_BYTES", "2000")]).await;
        let company = company(&server, "Acme Care").await;
        let url = upload_url(&server, &company).await;

        let cases: [(&str, Vec<u8>, u16, &str); 5] = [
            (
                "image/png",
                PNG.iter().copied().cycle().take(2001).collect(),
                413,
                "FileTooLarge",
            ),
            ("image/png", ELF.to_vec(), 415, "UnsupportedFileType"),
            ("application/pdf", PNG.to_vec(), 415, "ContentTypeMismatch"),
            (
                "text/html",
                b"<p>hello</p>".to_vec(),
                415,
                "UnsupportedFileType",
            ),
            ("text/plain", Vec::new(), 400, "EmptyFile"),
        ];
        for (content_type, bytes, status, code) in cases {
            let (got, body) = post(&server, &url, content_type, &bytes).await;
            assert_eq!(
                (got, body["code"].as_str().unwrap()),
                (status, code),
                "{db:?} {body}"
            );
            assert!(body["message"].as_str().unwrap().len() > 10);
        }
        let bad_digest = server
            .http
            .post(&url)
            .header("content-type", "image/png")
            .header(
                "digest",
                "sha-256=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            )
            .body(PNG.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(bad_digest.status(), 400);

        // A body that breaks off part way.
        let addr = server.url.trim_start_matches("http://").to_string();
        let path = url.trim_start_matches(&server.url).to_string();
        let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: image/png\r\ncontent-length: 1500\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(PNG).await.unwrap();
        drop(socket);

        // Refused uploads did not use up the URL, and left no file behind.
        let file = {
            let (status, body) = post(&server, &url, "image/png", PNG).await;
            assert_eq!(status, 200, "{body}");
            body["storageId"].as_str().unwrap().to_string()
        };
        let tmp = place.data_dir().join("files/tmp");
        for _ in 0..100 {
            if files_in(&tmp) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(files_in(&tmp), 0, "partial uploads are removed");
        assert_eq!(files_in(&place.data_dir().join("files/blobs")), 1);
        assert!(!file.is_empty());

        for unknown in [
            format!("{}/api/storage/upload?token=nope", server.url),
            format!("{}/api/storage/upload", server.url),
        ] {
            let (status, body) = post(&server, &unknown, "image/png", PNG).await;
            assert_eq!(
                (status, body["code"].as_str().unwrap()),
                (403, "InvalidUploadUrl")
            );
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn expired_upload_and_download_urls_are_refused() {
    for db in backends() {
        let place = Place::new(db).await;
        let server = TestServer::start_with(
            &place,
            &[
                ("SUPPORTSIGNAL_UPLOAD_URL_TTL_SECS", "1"),
                ("SUPPORTSIGNAL_DOWNLOAD_URL_TTL_SECS", "1"),
            ],
        )
        .await;
        let company = company(&server, "Acme Care").await;
        let file = upload(&server, &company, "image/png", PNG).await;
        let upload_later = upload_url(&server, &company).await;
        let download_later = download_url(&server, &company, &file).await;
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let (status, body) = post(&server, &upload_later, "image/png", PNG).await;
        assert_eq!(
            (status, body["code"].as_str().unwrap()),
            (403, "InvalidUploadUrl"),
            "{db:?}"
        );
        let response = server
            .http
            .get(download_later.as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
        let body: Json = response.json().await.unwrap();
        assert_eq!(body["code"], "DownloadUrlExpired");

        // The sweep drops the expired upload URL.
        let swept = sweep(&server).await;
        assert_eq!(swept["expired_upload_urls"], 1.0, "{swept}");
        server.stop().await;
    }
}

#[tokio::test]
async fn another_companys_files_are_out_of_reach_and_deletion_is_final() {
    for db in backends() {
        let place = Place::new(db).await;
        let server = TestServer::start(&place).await;
        let ours = company(&server, "Acme Care").await;
        let theirs = company(&server, "Other Care").await;
        let file = upload(&server, &ours, "image/png", PNG).await;
        let url = download_url(&server, &ours, &file).await;

        let args = json!({ "company": theirs, "storageId": file });
        assert_eq!(
            server.ok("mutation", "files:getUrl", args.clone()).await,
            Json::Null
        );
        assert_eq!(
            server.ok("query", "files:getMetadata", args.clone()).await,
            Json::Null
        );
        assert_eq!(server.ok("mutation", "files:delete", args).await, false);

        let args = json!({ "company": ours, "storageId": file });
        assert_eq!(
            server.ok("mutation", "files:delete", args.clone()).await,
            true
        );
        assert_eq!(
            server.ok("query", "files:getMetadata", args.clone()).await,
            Json::Null
        );
        let gone = server.http.get(url.as_str().unwrap()).send().await.unwrap();
        assert_eq!(gone.status(), 404, "{db:?}");

        // A stored file from an action (a generated report) is a file like any other.
        let note = server
            .ok(
                "action",
                "files:storeText",
                json!({ "company": ours, "text": "hello" }),
            )
            .await;
        let note = note.as_str().unwrap();
        let meta = server
            .ok(
                "query",
                "files:getMetadata",
                json!({ "company": ours, "storageId": note }),
            )
            .await;
        assert_eq!(meta["size"], 5.0);
        // sha256("hello"), base64.
        assert_eq!(
            meta["sha256"],
            "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
        );

        // A crash mid-upload leaves a `.part` file; the sweep removes it and the deleted blob.
        let tmp = place.data_dir().join("files/tmp");
        std::fs::write(tmp.join("0123abcd.part"), b"half a file").unwrap();
        let blobs = place.data_dir().join("files/blobs");
        assert_eq!(files_in(&blobs), 2);
        let swept = sweep(&server).await;
        assert_eq!(swept["unfinished_uploads"], 1.0, "{swept}");
        assert_eq!(swept["orphaned_blobs"], 1.0, "{swept}");
        assert_eq!(files_in(&tmp), 0);
        assert_eq!(files_in(&blobs), 1, "the stored note stays");
        assert_eq!(
            access_log(&server).await,
            ["upload", "url_issued", "delete", "upload"]
        );
        server.stop().await;
    }
}

/// moto's S3 server on a free port, stopped (killed) when dropped.
struct Moto {
    child: std::process::Child,
    url: String,
}

impl Moto {
    async fn start() -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("moto_server is installed (pip install 'moto[server]'; .ci/run does it)");
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..200 {
            if reqwest::get(&url).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Moto { child, url }
    }

    async fn create_bucket(&self, bucket: &str) {
        let created = reqwest::Client::new()
            .put(format!("{}/{bucket}", self.url))
            .send()
            .await
            .unwrap();
        assert!(
            created.status().is_success(),
            "bucket: {}",
            created.status()
        );
    }

    /// The keys in `bucket`, from a ListObjectsV2 answer.
    async fn keys(&self, bucket: &str) -> Vec<String> {
        let xml = reqwest::get(format!("{}/{bucket}?list-type=2", self.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        xml.split("<Key>")
            .skip(1)
            .filter_map(|part| part.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn files_can_live_in_an_s3_compatible_bucket() {
    let moto = Moto::start().await;
    let created = reqwest::Client::new()
        .put(format!("{}/ss-files", moto.url))
        .send()
        .await
        .unwrap();
    assert!(
        created.status().is_success(),
        "bucket: {}",
        created.status()
    );
    for db in backends() {
        let place = Place::new(db).await;
        let server = TestServer::start_with(
            &place,
            &[
                ("SUPPORTSIGNAL_STORAGE_URL", "s3://ss-files/node-a"),
                ("AWS_ENDPOINT_URL", moto.url.as_str()),
                ("AWS_ALLOW_HTTP", "true"),
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
            ],
        )
        .await;
        let company = company(&server, "Acme Care").await;
        let bytes: Vec<u8> = PNG
            .iter()
            .copied()
            .chain((0..3000u32).map(|i| i as u8))
            .collect();
        let file = upload(&server, &company, "image/png", &bytes).await;
        let keys = moto.keys("ss-files").await;
        assert_eq!(keys.len(), 1, "{db:?} {keys:?}");
        assert!(keys[0].starts_with("node-a/blobs/"), "{keys:?}");
        assert_eq!(files_in(&place.data_dir().join("files/blobs")), 0);
        assert_eq!(files_in(&place.data_dir().join("files/tmp")), 0);

        let url = download_url(&server, &company, &file).await;
        let url = url.as_str().unwrap();
        let whole = server.http.get(url).send().await.unwrap();
        assert_eq!(whole.status(), 200);
        assert_eq!(whole.bytes().await.unwrap().as_ref(), &bytes[..]);
        let part = server
            .http
            .get(url)
            .header("range", "bytes=100-199")
            .send()
            .await
            .unwrap();
        assert_eq!(part.status(), 206);
        assert_eq!(part.bytes().await.unwrap().as_ref(), &bytes[100..200]);

        // Deleted files leave the bucket with the sweep.
        let args = json!({ "company": company, "storageId": file });
        assert_eq!(server.ok("mutation", "files:delete", args).await, true);
        let swept = sweep(&server).await;
        assert_eq!(swept["orphaned_blobs"], 1.0, "{swept}");
        assert!(moto.keys("ss-files").await.is_empty());
        server.stop().await;
    }
}

const CHILD_ENV: &str = "SS_STORAGE_CHILD_DATA_DIR";

#[test]
#[ignore = "the server half of sigkill_mid_upload_leaves_no_visible_file; it starts this itself"]
fn storage_child_process() {
    let dir = std::env::var(CHILD_ENV).expect("started by the crash test");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let overrides = config::Overrides {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(dir.into()),
            database_url: None,
        };
        let config = config::Config::from_env(overrides, |k| {
            (k == "SUPPORTSIGNAL_ENV").then(|| "test".to_string())
        })
        .unwrap();
        let store = server::open_store(&config, common::functions_under_test::schema())
            .await
            .unwrap();
        let running = server::start(
            config,
            store,
            common::functions_under_test::registry(),
            std::future::pending(),
        )
        .await
        .unwrap();
        println!("LISTENING {}", running.addr);
        running.wait().await.unwrap();
    });
}

fn spawn_child(dir: &Path) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "storage_child_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("re-run the test binary as a server");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("child printed its address").unwrap();
        if let Some((_, addr)) = line.split_once("LISTENING ") {
            break addr.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}

async fn call(http: &reqwest::Client, addr: &str, kind: &str, path: &str, args: Json) -> Json {
    let body = json!({"path": path, "format": "json", "args": [args]});
    let reply: Json = http
        .post(format!("http://{addr}/api/{kind}"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["status"], "success", "{path}: {reply}");
    reply["value"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_upload_leaves_no_visible_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, addr) = spawn_child(&data);
    let http = reqwest::Client::new();
    let company = call(
        &http,
        &addr,
        "mutation",
        "tenancy:createCompany",
        json!({"name": "Acme"}),
    )
    .await;
    let company = company.as_str().unwrap().to_string();
    let url = call(
        &http,
        &addr,
        "mutation",
        "files:generateUploadUrl",
        json!({"company": company}),
    )
    .await;
    let url = url.as_str().unwrap().to_string();

    // Half of a 200 KB upload arrives; then the server dies.
    let path = url.split(&addr).nth(1).unwrap().to_string();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: image/png\r\ncontent-length: 200000\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let half: Vec<u8> = PNG.iter().copied().cycle().take(100_000).collect();
    socket.write_all(&half).await.unwrap();
    let tmp = data.join("files/tmp");
    for _ in 0..200 {
        if files_in(&tmp) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(files_in(&tmp), 1, "the upload was under way");
    child.kill().unwrap();
    child.wait().unwrap();
    drop(socket);

    let (mut child, addr) = spawn_child(&data);
    let count = json!({"company": company});
    assert_eq!(
        call(&http, &addr, "query", "files:count", count.clone()).await,
        0.0
    );
    let swept = call(&http, &addr, "action", "files:sweepNow", json!({})).await;
    assert_eq!(swept["unfinished_uploads"], 1.0, "{swept}");
    assert_eq!(files_in(&tmp), 0);
    assert_eq!(files_in(&data.join("files/blobs")), 0);
    // The URL was never used up: the whole file can still be sent.
    let url = url.replace(
        url.split("/api/").next().unwrap(),
        &format!("http://{addr}"),
    );
    let whole: Vec<u8> = PNG.iter().copied().cycle().take(200_000).collect();
    let response = http
        .post(&url)
        .header("content-type", "image/png")
        .body(whole)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(call(&http, &addr, "query", "files:count", count).await, 1.0);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn a_company_cannot_keep_more_than_its_quota() {
    let place = Place::new(common::Db::Sqlite).await;
    let server =
        TestServer::start_with(&place, &[("SUPPORTSIGNAL_STORAGE_QUOTA_BYTES", "100")]).await;
    let ours = company(&server, "Acme Care").await;
    let theirs = company(&server, "Other Care").await;
    let sixty = "a line of plain text that is exactly sixty bytes long......\n";
    assert_eq!(sixty.len(), 60);
    upload(&server, &ours, "text/plain", sixty.as_bytes()).await;
    let url = upload_url(&server, &ours).await;
    let (status, body) = post(&server, &url, "text/plain", sixty.as_bytes()).await;
    assert_eq!(
        (status, body["code"].as_str().unwrap()),
        (507, "StorageQuotaExceeded")
    );
    assert_eq!(files_in(&place.data_dir().join("files/blobs")), 1);
    // Each company has its own quota.
    upload(&server, &theirs, "text/plain", sixty.as_bytes()).await;
    server.stop().await;
}

/// The throughput figures: `cargo test --release -p server --test storage -- --ignored
/// throughput --nocapture` (prints MB/s; asserts only that the bytes round-trip).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement, run by hand"]
async fn throughput_of_a_10_mb_file() {
    let place = Place::new(common::Db::Sqlite).await;
    let server = TestServer::start(&place).await;
    let company = company(&server, "Acme Care").await;
    let bytes: Vec<u8> = PNG
        .iter()
        .copied()
        .chain((0..10 * 1024 * 1024 - PNG.len()).map(|i| (i % 251) as u8))
        .collect();
    let url = upload_url(&server, &company).await;
    let started = std::time::Instant::now();
    let (status, body) = post(&server, &url, "image/png", &bytes).await;
    let up = started.elapsed();
    assert_eq!(status, 200, "{body}");
    let link = download_url(&server, &company, body["storageId"].as_str().unwrap()).await;
    let started = std::time::Instant::now();
    let got = server
        .http
        .get(link.as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let down = started.elapsed();
    assert_eq!(got.len(), bytes.len());
    let mb = bytes.len() as f64 / 1e6;
    eprintln!(
        "10 MB upload {:.0} MB/s, download {:.0} MB/s",
        mb / up.as_secs_f64(),
        mb / down.as_secs_f64()
    );
    server.stop().await;
}
