//! Which repository a URL names: GitHub pull request URLs (the only PR host supported) and rig
//! git URLs, and the repository-mismatch guard of a merge (GASTOWN-DOMAIN.md 4.4).
//!
//! A PR URL must be exactly `https://github.com/{owner}/{repo}/pull/{number}` (a trailing `/`,
//! query or fragment is ignored); GitLab merge requests and other hosts are refused, because
//! this town can neither poll nor merge them. Owner and repository names are checked against
//! GitHub's character sets, so they are safe to put in an API path.

use super::Refusal;
use std::fmt;

/// A GitHub pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrRef {
    pub owner: String,
    pub repo: String,
    pub number: u64,
}

impl PrRef {
    /// Reads `https://github.com/{owner}/{repo}/pull/{number}`.
    pub fn parse(url: &str) -> Result<Self, Refusal> {
        let not_a_pr = || Refusal::NotAPullRequest(url.to_owned());
        let trimmed = url.trim();
        let (scheme, rest) = trimmed.split_once("://").ok_or_else(not_a_pr)?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let host = authority.to_ascii_lowercase();
        let path = path.split(['?', '#']).next().unwrap_or_default();
        if host == "gitlab.com"
            || host.starts_with("gitlab.")
            || path.contains("/-/merge_requests/")
        {
            return Err(Refusal::GitLab(url.to_owned()));
        }
        if !scheme.eq_ignore_ascii_case("https") {
            return Err(Refusal::NotHttps);
        }
        if host != "github.com" && host != "www.github.com" {
            return Err(Refusal::UnsupportedHost(authority.to_owned()));
        }
        let parts: Vec<&str> = path.strip_suffix('/').unwrap_or(path).split('/').collect();
        let [owner, repo, "pull", number] = parts[..] else {
            return Err(not_a_pr());
        };
        let number = number
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| number.parse::<u64>().ok())
            .flatten()
            .filter(|n| *n > 0)
            .ok_or_else(not_a_pr)?;
        if !is_owner(owner) || !is_repo(repo) {
            return Err(not_a_pr());
        }
        Ok(Self {
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            number,
        })
    }

    /// `owner/repo`.
    pub fn slug(&self) -> String {
        format!("{}/{}", self.owner, self.repo)
    }
}

/// GitHub user and organisation names: 1-39 of `A-Za-z0-9-`.
fn is_owner(s: &str) -> bool {
    (1..=39).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// GitHub repository names: 1-100 of `A-Za-z0-9._-`, not `.` or `..`.
fn is_repo(s: &str) -> bool {
    (1..=100).contains(&s.len())
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The repository a git URL names: host and path (`owner/repo`), compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRef {
    /// Lower case, without `www.` and without a port.
    pub host: String,
    /// Lower case, without `.git` and surrounding slashes.
    pub path: String,
}

impl RepoRef {
    /// Reads `https://host/owner/repo(.git)`, `ssh://git@host(:port)/owner/repo.git` and the
    /// scp-like `git@host:owner/repo.git`. `None` when it is none of those.
    pub fn from_git_url(url: &str) -> Option<Self> {
        let url = url.trim();
        let (authority, path) = match url.split_once("://") {
            Some((_, rest)) => rest.split_once('/')?,
            None => {
                let (authority, path) = url.split_once(':')?;
                if authority.contains('/') {
                    return None;
                }
                (authority, path)
            }
        };
        let host = authority.rsplit('@').next()?;
        let host = host.split(':').next()?.to_ascii_lowercase();
        let host = host.strip_prefix("www.").unwrap_or(&host).to_owned();
        let path = path.split(['?', '#']).next()?.trim_matches('/');
        let path = path
            .strip_suffix(".git")
            .unwrap_or(path)
            .to_ascii_lowercase();
        let segments: Vec<&str> = path.split('/').collect();
        if host.is_empty() || segments.len() < 2 || segments.iter().any(|s| s.is_empty()) {
            return None;
        }
        Some(Self { host, path })
    }

    fn of_pr(pr: &PrRef) -> Self {
        Self {
            host: "github.com".into(),
            path: pr.slug().to_ascii_lowercase(),
        }
    }
}

impl fmt::Display for RepoRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.path)
    }
}

/// A PR that belongs to another repository than its rig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoMismatch {
    pub rig: RepoRef,
    pub pr: RepoRef,
}

impl fmt::Display for RepoMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PR repository {} is not the rig's repository {}",
            self.pr, self.rig
        )
    }
}

/// The merge guard: `Some` when the rig's git URL and the PR URL both parse and name different
/// repositories (host or `owner/repo`); `None` when they agree or either cannot be read.
pub fn repo_mismatch(rig_git_url: &str, pr_url: &str) -> Option<RepoMismatch> {
    let rig = RepoRef::from_git_url(rig_git_url)?;
    let pr = RepoRef::of_pr(&PrRef::parse(pr_url).ok()?);
    (rig != pr).then_some(RepoMismatch { rig, pr })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pr(owner: &str, repo: &str, number: u64) -> PrRef {
        PrRef {
            owner: owner.into(),
            repo: repo.into(),
            number,
        }
    }

    #[test]
    fn github_pr_urls_parse() {
        let cases = [
            (
                "https://github.com/acme/widgets/pull/42",
                pr("acme", "widgets", 42),
            ),
            (
                "https://github.com/acme/widgets/pull/42/",
                pr("acme", "widgets", 42),
            ),
            (
                "  https://GitHub.com/a-b/x.y_z/pull/7?w=1#top ",
                pr("a-b", "x.y_z", 7),
            ),
            (
                "https://www.github.com/acme/widgets/pull/1",
                pr("acme", "widgets", 1),
            ),
        ];
        for (url, want) in cases {
            assert_eq!(PrRef::parse(url), Ok(want), "{url}");
        }
        assert_eq!(pr("acme", "widgets", 1).slug(), "acme/widgets");
    }

    #[test]
    fn gitlab_and_other_hosts_are_refused_with_their_reason() {
        let gl = "https://gitlab.com/group/project/-/merge_requests/3";
        assert_eq!(PrRef::parse(gl), Err(Refusal::GitLab(gl.into())));
        let self_hosted = "https://code.example.com/group/project/-/merge_requests/3";
        assert_eq!(
            PrRef::parse(self_hosted),
            Err(Refusal::GitLab(self_hosted.into()))
        );
        assert_eq!(
            PrRef::parse("https://bitbucket.org/a/b/pull-requests/1"),
            Err(Refusal::UnsupportedHost("bitbucket.org".into()))
        );
        assert_eq!(
            PrRef::parse("https://github.com.evil.example/a/b/pull/1"),
            Err(Refusal::UnsupportedHost("github.com.evil.example".into()))
        );
        assert_eq!(
            PrRef::parse("http://github.com/a/b/pull/1"),
            Err(Refusal::NotHttps)
        );
    }

    #[test]
    fn malformed_pr_urls_are_not_pull_requests() {
        for url in [
            "",
            "github.com/a/b/pull/1",
            "https://github.com/a/b/pulls/1",
            "https://github.com/a/b/issues/1",
            "https://github.com/a/b/pull/0",
            "https://github.com/a/b/pull/+1",
            "https://github.com/a/b/pull/1x",
            "https://github.com/a/b/pull/1/files",
            "https://github.com/a/b/pull/99999999999999999999999",
            "https://github.com/a/../pull/1",
            "https://github.com/a%2Fb/c/pull/1",
            "https://github.com/a_b/c/pull/1",
            "https://github.com//c/pull/1",
        ] {
            assert_eq!(
                PrRef::parse(url),
                Err(Refusal::NotAPullRequest(url.into())),
                "{url}"
            );
        }
    }

    #[test]
    fn git_urls_in_https_and_ssh_forms_name_the_same_repository() {
        let want = RepoRef {
            host: "github.com".into(),
            path: "acme/widgets".into(),
        };
        for url in [
            "https://github.com/acme/widgets",
            "https://github.com/acme/widgets.git",
            "https://github.com/Acme/Widgets/",
            "https://x-access-token:t@github.com/acme/widgets.git",
            "https://www.github.com/acme/widgets",
            "git@github.com:acme/widgets.git",
            "git@github.com:acme/widgets",
            "ssh://git@github.com/acme/widgets.git",
            "ssh://git@github.com:22/acme/widgets.git",
        ] {
            assert_eq!(RepoRef::from_git_url(url), Some(want.clone()), "{url}");
        }
        for url in [
            "",
            "acme/widgets",
            "https://github.com/acme",
            "https://github.com/",
            "/a/b:c",
        ] {
            assert_eq!(RepoRef::from_git_url(url), None, "{url}");
        }
        assert_eq!(
            RepoRef::from_git_url("https://gitlab.com/group/sub/project.git").map(|r| r.path),
            Some("group/sub/project".into())
        );
    }

    #[test]
    fn the_merge_guard_refuses_only_a_known_mismatch() {
        let url = "https://github.com/acme/widgets/pull/5";
        assert_eq!(repo_mismatch("git@github.com:acme/widgets.git", url), None);
        assert_eq!(repo_mismatch("https://github.com/ACME/widgets", url), None);
        let other = repo_mismatch("https://github.com/acme/gadgets.git", url).unwrap();
        assert_eq!(other.rig.path, "acme/gadgets");
        assert_eq!(other.pr.path, "acme/widgets");
        assert_eq!(
            other.to_string(),
            "PR repository github.com/acme/widgets is not the rig's repository github.com/acme/gadgets"
        );
        let fork = repo_mismatch("git@github.com:someone/widgets.git", url);
        assert!(fork.is_some());
        let other_host = repo_mismatch("https://gitlab.com/acme/widgets.git", url);
        assert_eq!(other_host.unwrap().rig.host, "gitlab.com");
        // Either side unreadable: no verdict, the merge is not refused on this ground.
        assert_eq!(repo_mismatch("", url), None);
        assert_eq!(
            repo_mismatch("https://github.com/acme/gadgets", "not a url"),
            None
        );
    }
}
