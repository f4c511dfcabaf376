//! `loadgrade submit` against a coordinator that lies (issue 20): a run id that is a path is refused before any
//! file is written, and every word from the wire (events, refusals, verdict reasons) is printed with its control
//! characters escaped, so a hostile coordinator can neither write outside the report folder nor drive the terminal.

mod support;

use loadgrade_proto::v1;
use loadgrade_proto::v1::run_service_server::{RunService, RunServiceServer};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

/// Text a hostile coordinator hides in its words: clear screen, a window title (OSC), a bell, a right-to-left
/// override and a line separator.
const HOSTILE: &str = "\u{1b}[2J\u{1b}]0;pwned\u{7}\u{202e}gnp.exe\u{2028}";

/// A RunService that answers with what it was told to.
#[derive(Clone)]
struct Liar {
    run_id: String,
    report_json: String,
}

#[tonic::async_trait]
impl RunService for Liar {
    async fn start_run(
        &self,
        _: Request<v1::StartRunRequest>,
    ) -> Result<Response<v1::StartRunResponse>, Status> {
        Ok(Response::new(v1::StartRunResponse {
            run_id: self.run_id.clone(),
            ..Default::default()
        }))
    }

    type WatchRunStream = tokio_stream::Iter<std::vec::IntoIter<Result<v1::RunEvent, Status>>>;

    async fn watch_run(
        &self,
        _: Request<v1::WatchRunRequest>,
    ) -> Result<Response<Self::WatchRunStream>, Status> {
        let event = |message: String, state: v1::RunState| {
            Ok(v1::RunEvent {
                run_id: self.run_id.clone(),
                message,
                state: state as i32,
                verdict: v1::Verdict::Pass as i32,
                progress: false,
            })
        };
        Ok(Response::new(tokio_stream::iter(vec![
            event(format!("started {HOSTILE}"), v1::RunState::Running),
            event(format!("done {HOSTILE}"), v1::RunState::Finished),
        ])))
    }

    async fn get_report(
        &self,
        _: Request<v1::GetReportRequest>,
    ) -> Result<Response<v1::GetReportResponse>, Status> {
        Ok(Response::new(v1::GetReportResponse {
            report_json: self.report_json.clone(),
            report_md: format!("# report {HOSTILE}\n"),
            verdict: v1::Verdict::Pass as i32,
        }))
    }

    async fn cancel_run(
        &self,
        _: Request<v1::CancelRunRequest>,
    ) -> Result<Response<v1::CancelRunResponse>, Status> {
        Err(Status::unimplemented(HOSTILE))
    }

    async fn list_runs(
        &self,
        _: Request<v1::ListRunsRequest>,
    ) -> Result<Response<v1::ListRunsResponse>, Status> {
        Err(Status::unimplemented(HOSTILE))
    }

    async fn list_agents(
        &self,
        _: Request<v1::ListAgentsRequest>,
    ) -> Result<Response<v1::ListAgentsResponse>, Status> {
        Err(Status::unimplemented(HOSTILE))
    }

    async fn check_plan(
        &self,
        _: Request<v1::CheckPlanRequest>,
    ) -> Result<Response<v1::CheckPlanResponse>, Status> {
        Err(Status::unimplemented(HOSTILE))
    }
}

async fn serve_liar(liar: Liar) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(RunServiceServer::new(liar))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loadgrade-liar-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("ci/job")).expect("dir");
    std::fs::write(
        dir.join("ci/job/plan.toml"),
        "name = \"p\"\n[[scenario]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://127.0.0.1:9/\"\nduration = \"1s\"\n",
    )
    .expect("plan");
    dir
}

/// `loadgrade submit plan.toml --coordinator URL` run in `cwd`.
async fn submit(cwd: &Path, url: &str) -> std::process::Output {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgrade"))
        .args(["submit", "plan.toml", "--coordinator", url])
        .current_dir(cwd)
        .output();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("submit ends")
        .expect("submit runs")
}

/// Regression (issue 20): a run id `../../PWNED_dir` from a fake coordinator made `submit` write all six report files
/// there and repoint loadgrade-report/latest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_id_that_is_a_path_is_refused_before_any_file_is_written() {
    for (name, id) in [
        ("relative", "../../PWNED_dir"),
        ("absolute", "/tmp/loadgrade-PWNED"),
    ] {
        let dir = work_dir(name);
        let url = serve_liar(Liar {
            run_id: id.to_owned(),
            report_json: "{}".to_owned(),
        })
        .await;
        let out = submit(&dir.join("ci/job"), &url).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("is not of the form a coordinator gives"),
            "{stderr}"
        );
        assert!(
            !dir.join("PWNED_dir").exists(),
            "{name}: a folder outside the job was made"
        );
        assert!(!Path::new("/tmp/loadgrade-PWNED").exists());
        assert!(
            !dir.join("ci/job/loadgrade-report").exists(),
            "{name}: nothing written"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Regression (issue 20): RunEvent text was printed raw, escape sequences included (`ESC[2J`, an OSC title).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn words_from_the_wire_are_printed_escaped() {
    // A real report, with hostile verdict reasons planted in it.
    let testbed = support::testbed().await;
    let embedded = support::embedded(1).await;
    let plan = format!(
        "name = \"liar\"\n[[scenario]]\nname = \"a\"\nkind = \"http\"\nurl = \"http://{}/health\"\nconnections = 1\n\
         requests = 5\n",
        testbed.addr()
    );
    let finished = support::run_plan(&embedded, &plan).await;
    let mut report: serde_json::Value = serde_json::from_str(&finished.json).expect("json");
    report["verdict_reasons"] = serde_json::json!([format!("reason {HOSTILE}")]);
    report["grade_reason"] = serde_json::json!(format!("grade {HOSTILE}"));
    let run_id = finished.report.run_id.clone();
    let dir = work_dir("escape");
    let url = serve_liar(Liar {
        run_id: run_id.clone(),
        report_json: report.to_string(),
    })
    .await;
    let out = submit(&dir.join("ci/job"), &url).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let printed = format!("{stdout}{stderr}");
    for raw in ['\u{1b}', '\u{7}', '\u{202e}', '\u{2028}'] {
        assert!(!printed.contains(raw), "{raw:?} printed raw:\n{printed}");
    }
    assert!(printed.contains("started \\u{1b}[2J"), "{printed}");
    assert!(printed.contains("reason \\u{1b}[2J"), "{printed}");
    assert!(
        dir.join("ci/job/loadgrade-report")
            .join(&run_id)
            .join("report.json")
            .is_file(),
        "a well-formed id's reports land in their folder: {printed}"
    );
    embedded.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
