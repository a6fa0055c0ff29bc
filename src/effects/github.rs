//! The GitHub client of the PR host (API.md "Outbound: the PR host"; GASTOWN-DOMAIN.md 4.3,
//! 4.4): a PR's state, its review/CI feedback, and merging it.
//!
//! Every request carries `Authorization: Bearer <token>`, `Accept: application/vnd.github+json`
//! and a `User-Agent` (GitHub refuses requests without one). PR URLs are read by
//! [`PrRef::parse`]; anything but a GitHub pull request is refused before sending.

use super::pr_url::PrRef;
use super::{base_url, exchange, json, refuse, segment, CallError, Refusal};
use crate::ports::{Http, HttpRequest};
use crate::vocabulary::time::{Millis, SECOND};
use serde::Deserialize;
use serde_json::json as json_value;

/// Knobs of the GitHub client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubOptions {
    /// Timeout of each request (a feedback check makes three).
    pub timeout_ms: Millis,
    pub user_agent: String,
}

impl Default for GitHubOptions {
    fn default() -> Self {
        Self {
            timeout_ms: 10 * SECOND,
            user_agent: "gastown-town".into(),
        }
    }
}

/// Where a pull request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrState {
    Open,
    Merged,
    Closed,
}

impl PrState {
    pub fn as_str(self) -> &'static str {
        match self {
            PrState::Open => "open",
            PrState::Merged => "merged",
            PrState::Closed => "closed",
        }
    }
}

/// What a PR's reviews and checks say (GASTOWN-DOMAIN.md 4.3), about one head commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrFeedback {
    /// The head commit that was checked: a merge pins it, so nothing pushed later is merged.
    pub head_sha: String,
    /// Some review thread is unresolved, or there are more than the 100 threads read.
    pub has_unresolved_comments: bool,
    /// Some completed check run concluded other than `success` or `skipped`.
    pub has_failing_checks: bool,
    /// No check runs, or all completed `success`/`skipped` and all read; and the legacy
    /// combined status is `success` when it has entries.
    pub all_checks_pass: bool,
    /// More check runs exist than the 100 read.
    pub has_unchecked_runs: bool,
}

/// A client of the GitHub API at `base` (`GITHUB_API_URL`) acting with `token`.
#[derive(Debug)]
pub struct GitHub<'h, H> {
    http: &'h H,
    base: String,
    token: String,
    options: GitHubOptions,
}

const THREADS_QUERY: &str = "query($owner: String!, $repo: String!, $number: Int!) { \
repository(owner: $owner, name: $repo) { pullRequest(number: $number) { headRefOid \
reviewThreads(first: 100) { nodes { isResolved } pageInfo { hasNextPage } } } } }";

impl<'h, H: Http> GitHub<'h, H> {
    pub fn new(http: &'h H, base: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            http,
            base: base.into(),
            token: token.into(),
            options: GitHubOptions::default(),
        }
    }

    pub fn with_options(self, options: GitHubOptions) -> Self {
        Self { options, ..self }
    }

    /// `GET /repos/{o}/{r}/pulls/{n}`: merged (`merged` or `merged_at`), closed or open.
    pub async fn pr_status(&self, pr_url: &str) -> Result<PrState, CallError> {
        const CALL: &str = "github.pr_status";
        let pr = Self::pr(CALL, pr_url)?;
        let request = self.request(CALL, "GET", &pull_path(&pr), None)?;
        exchange(self.http, CALL, request, |b| {
            let p: Pull = json(b)?;
            match (p.merged || p.merged_at.is_some(), p.state.as_str()) {
                (true, _) => Ok(PrState::Merged),
                (false, "closed") => Ok(PrState::Closed),
                (false, "open") => Ok(PrState::Open),
                (false, other) => Err(format!("state: unknown pull request state {other:?}")),
            }
        })
        .await
    }

    /// Review threads (GraphQL, which also gives the head commit), then that commit's check
    /// runs and its legacy combined status. Any failing request fails the whole check.
    pub async fn feedback(&self, pr_url: &str) -> Result<PrFeedback, CallError> {
        const CALL: &str = "github.feedback";
        let pr = Self::pr(CALL, pr_url)?;
        let variables = json_value!({ "owner": pr.owner, "repo": pr.repo, "number": pr.number });
        let body = json_value!({ "query": THREADS_QUERY, "variables": variables }).to_string();
        let request = self.request(CALL, "POST", "/graphql", Some(body))?;
        let threads = exchange(self.http, CALL, request, parse_threads).await?;

        let repo = format!("/repos/{}/{}", pr.owner, pr.repo);
        let commit = format!("{repo}/commits/{}", segment(&threads.head_sha));
        let path = format!("{commit}/check-runs?per_page=100");
        let request = self.request(CALL, "GET", &path, None)?;
        let runs: CheckRuns = exchange(self.http, CALL, request, json).await?;

        let request = self.request(CALL, "GET", &format!("{commit}/status"), None)?;
        let combined: CombinedStatus = exchange(self.http, CALL, request, json).await?;

        Ok(assess(&threads, &runs, &combined))
    }

    /// `PUT /repos/{o}/{r}/pulls/{n}/merge` with `{"merge_method":"merge","sha":head_sha}`,
    /// so GitHub merges only that head (the one that was checked): a 2xx with `merged: true` is
    /// merged; 405 (not mergeable), 409 ("Head branch was modified": pushed since) etc. are
    /// failures.
    pub async fn merge(&self, pr_url: &str, head_sha: &str) -> Result<(), CallError> {
        const CALL: &str = "github.merge";
        let pr = Self::pr(CALL, pr_url)?;
        let path = format!("{}/merge", pull_path(&pr));
        let body = json_value!({ "merge_method": "merge", "sha": head_sha }).to_string();
        let request = self.request(CALL, "PUT", &path, Some(body))?;
        exchange(self.http, CALL, request, |b| {
            let answer: MergeAnswer = json(b)?;
            answer
                .merged
                .then_some(())
                .ok_or_else(|| "merged: false in a 2xx answer".to_owned())
        })
        .await
    }

    fn pr(call: &'static str, pr_url: &str) -> Result<PrRef, CallError> {
        PrRef::parse(pr_url).map_err(|r| refuse(call, r))
    }

    fn request(
        &self,
        call: &'static str,
        method: &'static str,
        path: &str,
        body: Option<String>,
    ) -> Result<HttpRequest, CallError> {
        let base = base_url(&self.base).map_err(|r| refuse(call, r))?;
        if self.token.trim().is_empty() {
            return Err(refuse(call, Refusal::NoToken));
        }
        let mut headers = vec![
            (
                "Authorization".to_owned(),
                format!("Bearer {}", self.token.trim()),
            ),
            (
                "Accept".to_owned(),
                "application/vnd.github+json".to_owned(),
            ),
            ("User-Agent".to_owned(), self.options.user_agent.clone()),
            ("X-GitHub-Api-Version".to_owned(), "2022-11-28".to_owned()),
        ];
        if body.is_some() {
            headers.push(("Content-Type".to_owned(), "application/json".to_owned()));
        }
        Ok(HttpRequest {
            method,
            url: format!("{base}{path}"),
            headers,
            body,
            timeout_ms: self.options.timeout_ms,
        })
    }
}

fn pull_path(pr: &PrRef) -> String {
    format!("/repos/{}/{}/pulls/{}", pr.owner, pr.repo, pr.number)
}

#[derive(Deserialize)]
struct Pull {
    state: String,
    #[serde(default)]
    merged: bool,
    #[serde(default)]
    merged_at: Option<String>,
}

#[derive(Deserialize)]
struct MergeAnswer {
    merged: bool,
}

/// What the GraphQL query tells: the head commit and the review threads read.
struct Threads {
    head_sha: String,
    unresolved: bool,
}

fn parse_threads(body: &str) -> Result<Threads, String> {
    #[derive(Deserialize)]
    struct Answer {
        data: Option<Data>,
        #[serde(default)]
        errors: Vec<GraphqlError>,
    }
    #[derive(Deserialize)]
    struct GraphqlError {
        message: String,
    }
    #[derive(Deserialize)]
    struct Data {
        repository: Option<Repository>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Repository {
        pull_request: Option<PullRequest>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct PullRequest {
        head_ref_oid: String,
        review_threads: ReviewThreads,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct ReviewThreads {
        nodes: Vec<Thread>,
        page_info: PageInfo,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Thread {
        is_resolved: bool,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct PageInfo {
        has_next_page: bool,
    }

    let answer: Answer = json(body)?;
    if let Some(e) = answer.errors.first() {
        return Err(format!("graphql error: {}", e.message));
    }
    let pr = answer
        .data
        .and_then(|d| d.repository)
        .and_then(|r| r.pull_request)
        .ok_or("data.repository.pullRequest: missing")?;
    let threads = pr.review_threads;
    Ok(Threads {
        head_sha: pr.head_ref_oid,
        unresolved: threads.page_info.has_next_page || threads.nodes.iter().any(|t| !t.is_resolved),
    })
}

#[derive(Deserialize)]
struct CheckRuns {
    total_count: u64,
    check_runs: Vec<CheckRun>,
}

#[derive(Deserialize)]
struct CheckRun {
    status: String,
    conclusion: Option<String>,
}

impl CheckRun {
    fn completed(&self) -> bool {
        self.status == "completed"
    }

    fn passed(&self) -> bool {
        matches!(self.conclusion.as_deref(), Some("success" | "skipped"))
    }
}

#[derive(Deserialize)]
struct CombinedStatus {
    state: String,
    total_count: u64,
}

fn assess(threads: &Threads, runs: &CheckRuns, combined: &CombinedStatus) -> PrFeedback {
    let read = &runs.check_runs;
    let has_unchecked_runs = runs.total_count > read.len() as u64;
    let runs_pass = !has_unchecked_runs && read.iter().all(|r| r.completed() && r.passed());
    let legacy_pass = combined.total_count == 0 || combined.state == "success";
    PrFeedback {
        head_sha: threads.head_sha.clone(),
        has_unresolved_comments: threads.unresolved,
        has_failing_checks: read.iter().any(|r| r.completed() && !r.passed()),
        all_checks_pass: runs_pass && legacy_pass,
        has_unchecked_runs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(status: &str, conclusion: Option<&str>) -> CheckRun {
        CheckRun {
            status: status.into(),
            conclusion: conclusion.map(Into::into),
        }
    }

    fn verdict(runs: Vec<CheckRun>, total: u64, legacy: (&str, u64)) -> PrFeedback {
        let threads = Threads {
            head_sha: "abc".into(),
            unresolved: false,
        };
        let runs = CheckRuns {
            total_count: total,
            check_runs: runs,
        };
        let combined = CombinedStatus {
            state: legacy.0.into(),
            total_count: legacy.1,
        };
        assess(&threads, &runs, &combined)
    }

    #[test]
    fn no_runs_and_no_statuses_pass() {
        let v = verdict(vec![], 0, ("pending", 0));
        assert!(v.all_checks_pass && !v.has_failing_checks && !v.has_unchecked_runs);
    }

    #[test]
    fn success_and_skipped_pass_anything_else_completed_fails() {
        let ok = verdict(
            vec![
                run("completed", Some("success")),
                run("completed", Some("skipped")),
            ],
            2,
            ("success", 1),
        );
        assert!(ok.all_checks_pass && !ok.has_failing_checks);
        for bad in [
            "failure",
            "neutral",
            "cancelled",
            "timed_out",
            "action_required",
        ] {
            let v = verdict(vec![run("completed", Some(bad))], 1, ("success", 0));
            assert!(v.has_failing_checks && !v.all_checks_pass, "{bad}");
        }
        let null = verdict(vec![run("completed", None)], 1, ("success", 0));
        assert!(null.has_failing_checks);
    }

    #[test]
    fn a_run_in_progress_is_neither_failing_nor_passing() {
        let v = verdict(vec![run("in_progress", None)], 1, ("success", 0));
        assert!(!v.has_failing_checks && !v.all_checks_pass);
    }

    #[test]
    fn unread_runs_are_unchecked_and_block_passing() {
        let v = verdict(vec![run("completed", Some("success"))], 150, ("success", 0));
        assert!(v.has_unchecked_runs && !v.all_checks_pass && !v.has_failing_checks);
    }

    #[test]
    fn the_legacy_status_must_be_success_only_when_it_has_entries() {
        let runs = || vec![run("completed", Some("success"))];
        assert!(verdict(runs(), 1, ("pending", 0)).all_checks_pass);
        assert!(!verdict(runs(), 1, ("pending", 2)).all_checks_pass);
        let failing = verdict(runs(), 1, ("failure", 1));
        assert!(!failing.all_checks_pass && !failing.has_failing_checks);
    }

    #[test]
    fn threads_are_unresolved_when_any_is_or_more_pages_exist() {
        let body = |nodes: &str, next: bool| {
            format!(
                r#"{{"data":{{"repository":{{"pullRequest":{{"headRefOid":"abc",
                "reviewThreads":{{"nodes":[{nodes}],"pageInfo":{{"hasNextPage":{next}}}}}}}}}}}}}"#
            )
        };
        let read = |nodes, next| parse_threads(&body(nodes, next)).unwrap().unresolved;
        assert!(!read("", false));
        assert!(!read(r#"{"isResolved":true}"#, false));
        assert!(read(r#"{"isResolved":true},{"isResolved":false}"#, false));
        assert!(read(r#"{"isResolved":true}"#, true));
        assert_eq!(parse_threads(&body("", false)).unwrap().head_sha, "abc");
    }

    #[test]
    fn graphql_errors_and_missing_pull_requests_are_bad_bodies() {
        let e = parse_threads(
            r#"{"data":{"repository":{"pullRequest":null}},"errors":[{"message":"Could not resolve"}]}"#,
        );
        assert_eq!(e.err().unwrap(), "graphql error: Could not resolve");
        let e = parse_threads(r#"{"data":{"repository":null}}"#);
        assert_eq!(e.err().unwrap(), "data.repository.pullRequest: missing");
    }
}
