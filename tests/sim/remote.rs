//! The simulation's world outside the town: the container plane (one process per started
//! agent) and GitHub (pull requests and their review/CI state).
//!
//! Each tick gets a fresh [`FakeHttp`] scripted from this model: first, sometimes, a few
//! injected failures (500/503/400, timeout, network error, a garbage body) on paths the tick is
//! likely to call, then the model's truthful answers. After the tick, [`Remote::settle`] reads
//! the requests the fake recorded, in order, and applies the ones that were answered truthfully
//! (a start starts a process, a stop stops it, a merge merges the PR). A request matched an
//! injected failure exactly when it was among the first `n` requests to that method and path,
//! since those rules come first.

use super::rng::Rng;
use gastown_town::testing::http::{path_of, FakeHttp, Reply};
use gastown_town::vocabulary::time::Millis;
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, BTreeSet};

/// The head commit every simulated PR reports.
const HEAD_SHA: &str = "5a1e0c0ffee";

/// What the container says about an agent's process.
#[derive(Debug, Clone, PartialEq)]
pub enum Proc {
    Running,
    Exited(Option<String>),
}

/// A process the container plane runs for an agent.
#[derive(Debug, Clone)]
pub struct Process {
    pub state: Proc,
    /// Never heartbeats (a wedged process).
    pub hung: bool,
    /// Heartbeats, but its SDK activity clock stays at this time (a stuck tool call).
    pub stuck_since: Option<Millis>,
    pub role: String,
}

/// Where a pull request stands on GitHub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrState {
    Open,
    Merged,
    Closed,
}

#[derive(Debug, Clone)]
pub struct Pr {
    pub state: PrState,
    /// GitHub refuses to merge it (405) while this holds.
    pub blocked: bool,
}

/// What GitHub says about every PR's reviews and checks this tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feedback {
    Green,
    Unresolved,
    Failing,
    Unchecked,
}

/// Counters of what the world saw.
#[derive(Debug, Default, Clone)]
pub struct RemoteStats {
    pub starts: u64,
    pub starts_of_running: u64,
    pub stops: u64,
    pub messages: u64,
    pub merges: u64,
    pub injected_failures: u64,
    /// Container outages (every start refused for a while).
    pub outages: u64,
}

#[derive(Debug, Default)]
pub struct Remote {
    pub procs: BTreeMap<String, Process>,
    /// Pull requests by URL.
    pub prs: BTreeMap<String, Pr>,
    next_pr: u64,
    /// Ticks left in a container outage: every start is refused with a 503.
    pub outage: u32,
    pub stats: RemoteStats,
}

/// One tick's scripted fake and what was scripted into it.
pub struct Plan {
    pub fake: FakeHttp,
    injected: BTreeMap<(String, String), u32>,
    merge_ok: BTreeSet<String>,
}

fn pull_path(url: &str) -> String {
    let rest = url.trim_start_matches("https://github.com/");
    let mut parts = rest.split('/');
    let (owner, repo, _, number) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next(),
        parts.next().unwrap_or_default(),
    );
    format!("/repos/{owner}/{repo}/pulls/{number}")
}

fn repo_path(url: &str) -> String {
    let pull = pull_path(url);
    pull.rsplitn(3, '/').nth(2).unwrap_or_default().to_owned()
}

impl Remote {
    /// Opens a new pull request on `owner/repo` and returns its URL.
    pub fn open_pr(&mut self, owner: &str, repo: &str, rng: &mut Rng) -> String {
        self.next_pr += 1;
        let url = format!("https://github.com/{owner}/{repo}/pull/{}", self.next_pr);
        self.prs.insert(
            url.clone(),
            Pr {
                state: PrState::Open,
                blocked: rng.chance(0.2),
            },
        );
        url
    }

    /// People act on GitHub: PRs get merged or closed by hand, merge blocks come and go.
    pub fn drift(&mut self, rng: &mut Rng) {
        if self.outage > 0 {
            self.outage -= 1;
        } else if rng.chance(0.002) {
            self.outage = rng.between(100, 400) as u32;
            self.stats.outages += 1;
        }
        for pr in self.prs.values_mut().filter(|p| p.state == PrState::Open) {
            if rng.chance(0.004) {
                pr.state = PrState::Merged;
            } else if rng.chance(0.003) {
                pr.state = PrState::Closed;
            } else if rng.chance(0.05) {
                pr.blocked = !pr.blocked;
            }
        }
    }

    /// Scripts this tick's fake. `agents` are the agents the town knows.
    pub fn plan(&self, rng: &mut Rng, agents: &[String]) -> Plan {
        let fake = FakeHttp::new();
        let mut injected = BTreeMap::new();
        if self.outage > 0 {
            fake.always("POST", "/agents/start", Reply::status(503));
            injected.insert(("POST".to_owned(), "/agents/start".to_owned()), u32::MAX);
        }
        let open_prs: Vec<&String> = self
            .prs
            .iter()
            .filter(|(_, p)| p.state == PrState::Open)
            .map(|(u, _)| u)
            .collect();
        if rng.chance(0.2) {
            for _ in 0..rng.between(1, 3) {
                let (method, path) = match rng.below(6) {
                    0 | 1 => ("POST", "/agents/start".to_owned()),
                    2 if !agents.is_empty() => {
                        let a = rng.pick(agents);
                        let verb = *rng.pick(&["status", "stop", "message"]);
                        let method = if verb == "status" { "GET" } else { "POST" };
                        (method, format!("/agents/{a}/{verb}"))
                    }
                    3 if !open_prs.is_empty() => {
                        let url = *rng.pick(&open_prs);
                        ("GET", pull_path(url))
                    }
                    4 if !open_prs.is_empty() => {
                        let url = *rng.pick(&open_prs);
                        ("PUT", format!("{}/merge", pull_path(url)))
                    }
                    _ => ("POST", "/graphql".to_owned()),
                };
                let reply = match rng.below(5) {
                    0 => Reply::status(500),
                    1 => Reply::status(503),
                    2 => Reply::Timeout,
                    3 => Reply::network("connection reset by peer"),
                    // A 2xx is an acknowledgement on the container's POSTs, whatever its body.
                    _ if method == "POST" && path.starts_with("/agents/") => {
                        Reply::json(400, json!({"error": "Invalid request body"}))
                    }
                    _ => Reply::garbage(),
                };
                let n = rng.between(1, 2) as u32;
                fake.times(n, method, &path, reply);
                let left = injected.entry((method.to_owned(), path)).or_insert(0);
                *left = u32::saturating_add(*left, n);
            }
        }

        fake.always("GET", "/health", Reply::ok(json!({"status": "ok"})));
        for agent in agents {
            let reply = match self.procs.get(agent).map(|p| &p.state) {
                Some(Proc::Running) => Reply::ok(json!({"status": "running"})),
                Some(Proc::Exited(reason)) => {
                    Reply::ok(json!({"status": "exited", "exitReason": reason}))
                }
                None => Reply::json(404, json!({"error": format!("Agent {agent} not found")})),
            };
            fake.always("GET", &format!("/agents/{agent}/status"), reply);
        }
        let mut merge_ok = BTreeSet::new();
        let mut repos = BTreeSet::new();
        for (url, pr) in &self.prs {
            let path = pull_path(url);
            repos.insert(repo_path(url));
            let (state, merged) = match pr.state {
                PrState::Open => ("open", false),
                PrState::Merged => ("closed", true),
                PrState::Closed => ("closed", false),
            };
            fake.always(
                "GET",
                &path,
                Reply::ok(json!({"state": state, "merged": merged})),
            );
            let merge = format!("{path}/merge");
            if pr.state == PrState::Open && !pr.blocked {
                fake.always("PUT", &merge, Reply::ok(json!({"merged": true})));
                merge_ok.insert(merge);
            } else {
                fake.always("PUT", &merge, Reply::status(405));
            }
        }
        let feedback = *rng.pick(&[
            Feedback::Green,
            Feedback::Green,
            Feedback::Green,
            Feedback::Unresolved,
            Feedback::Failing,
            Feedback::Unchecked,
        ]);
        let threads = if feedback == Feedback::Unresolved {
            json!([{"isResolved": true}, {"isResolved": false}])
        } else {
            json!([{"isResolved": true}])
        };
        fake.always(
            "POST",
            "/graphql",
            Reply::ok(json!({"data": {"repository": {"pullRequest": {
                "headRefOid": HEAD_SHA,
                "reviewThreads": {"nodes": threads, "pageInfo": {"hasNextPage": false}}
            }}}})),
        );
        let run = |conclusion: &str| json!({"status": "completed", "conclusion": conclusion});
        let runs = match feedback {
            Feedback::Failing => {
                json!({"total_count": 2, "check_runs": [run("success"), run("failure")]})
            }
            Feedback::Unchecked => json!({"total_count": 150, "check_runs": [run("success")]}),
            _ => json!({"total_count": 1, "check_runs": [run("success")]}),
        };
        for repo in repos {
            let commit = format!("{repo}/commits/{HEAD_SHA}");
            fake.always(
                "GET",
                &format!("{commit}/check-runs"),
                Reply::ok(runs.clone()),
            );
            fake.always(
                "GET",
                &format!("{commit}/status"),
                Reply::ok(json!({"state": "success", "total_count": 1})),
            );
        }
        // Start, stop, message, token and config acknowledgements.
        fake.always("POST", "*", Reply::ok(json!({})));
        Plan {
            fake,
            injected,
            merge_ok,
        }
    }

    /// Applies the truthfully answered requests of the tick, in the order they were sent.
    pub fn settle(&mut self, plan: &Plan, rng: &mut Rng, now: Millis) {
        let mut left = plan.injected.clone();
        for request in plan.fake.requests() {
            let path = path_of(&request.url).to_owned();
            let key = (request.method.to_owned(), path.clone());
            if let Some(n) = left.get_mut(&key).filter(|n| **n > 0) {
                *n -= 1;
                self.stats.injected_failures += 1;
                continue;
            }
            let agent = path
                .strip_prefix("/agents/")
                .and_then(|rest| rest.rsplit_once('/'))
                .map(|(agent, verb)| (agent.to_owned(), verb));
            match (request.method, agent) {
                ("POST", None) if path == "/agents/start" => {
                    let body: Json = serde_json::from_str(request.body.as_deref().unwrap_or("{}"))
                        .expect("start body is JSON");
                    let agent_id = body["agentId"].as_str().expect("agentId").to_owned();
                    let role = body["role"].as_str().unwrap_or_default().to_owned();
                    self.stats.starts += 1;
                    if self
                        .procs
                        .get(&agent_id)
                        .is_some_and(|p| p.state == Proc::Running)
                    {
                        self.stats.starts_of_running += 1;
                    }
                    let process = Process {
                        state: Proc::Running,
                        hung: rng.chance(0.06),
                        stuck_since: rng.chance(0.05).then_some(now),
                        role,
                    };
                    self.procs.insert(agent_id, process);
                }
                ("POST", Some((agent_id, "stop"))) => {
                    self.stats.stops += 1;
                    if let Some(p) = self.procs.get_mut(&agent_id) {
                        p.state = Proc::Exited(Some("stopped".into()));
                    }
                }
                ("POST", Some((_, "message"))) => self.stats.messages += 1,
                ("PUT", None) if plan.merge_ok.contains(&path) => {
                    let pull = path.trim_end_matches("/merge");
                    if let Some(pr) = self
                        .prs
                        .iter_mut()
                        .find(|(u, _)| pull_path(u) == pull)
                        .map(|(_, p)| p)
                    {
                        pr.state = PrState::Merged;
                        self.stats.merges += 1;
                    }
                }
                _ => {}
            }
        }
    }
}
