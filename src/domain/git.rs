//! What the town accepts as a repository URL and a branch name, before it hands them to the
//! container (which passes them to `git clone` and `git checkout`): only the https and ssh
//! forms of a URL, and only branch names git itself accepts (`git check-ref-format --branch`).
//! Nothing that starts with `-` gets through, so neither can be read as an option.

/// `https://host/path`, `ssh://[user@]host[:port]/path` or `user@host:path`.
pub fn valid_url(url: &str) -> bool {
    if url.is_empty()
        || url.starts_with('-')
        || url.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return false;
    }
    let host_then_path = |rest: &str| {
        rest.split_once('/')
            .is_some_and(|(host, path)| valid_host(host) && !path.is_empty())
    };
    if let Some(rest) = url.strip_prefix("https://") {
        return host_then_path(rest);
    }
    if let Some(rest) = url.strip_prefix("ssh://") {
        let rest = rest.split_once('@').map_or(
            rest,
            |(user, rest)| {
                if valid_user(user) {
                    rest
                } else {
                    ""
                }
            },
        );
        return host_then_path(rest);
    }
    // The scp-like form: user@host:path.
    url.split_once('@').is_some_and(|(user, rest)| {
        valid_user(user)
            && rest.split_once(':').is_some_and(|(host, path)| {
                valid_host(host) && !path.is_empty() && !path.starts_with('-')
            })
    })
}

/// A host name with an optional port: letters, digits, `.`, `-` and one `:port`.
fn valid_host(host: &str) -> bool {
    let (name, port) = host.split_once(':').unwrap_or((host, "0"));
    !name.is_empty()
        && !name.starts_with(['-', '.'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
}

fn valid_user(user: &str) -> bool {
    !user.is_empty()
        && !user.starts_with('-')
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A branch name git accepts: no control characters, spaces or any of `~^:?*[\`, no `..`,
/// `@{` or `//`, not `@`, not starting with `-` or `/`, not ending with `/` or `.`, and no
/// part that starts with `.` or ends with `.lock`.
pub fn valid_branch(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "@"
        && !name.starts_with(['-', '/'])
        && !name.ends_with(['/', '.'])
        && !["..", "@{", "//"].iter().any(|bad| name.contains(bad))
        && !name
            .chars()
            .any(|c| c.is_control() || c == ' ' || "~^:?*[\\".contains(c))
        && name
            .split('/')
            .all(|part| !part.starts_with('.') && !part.ends_with(".lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_or_ssh() {
        for good in [
            "https://github.com/acme/widgets.git",
            "https://gitlab.example.com:8443/group/sub/repo",
            "ssh://git@github.com/acme/widgets.git",
            "ssh://github.com:22/acme/widgets",
            "git@github.com:acme/widgets.git",
        ] {
            assert!(valid_url(good), "{good}");
        }
        for bad in [
            "",
            "--upload-pack=touch /tmp/x",
            "http://github.com/acme/widgets",
            "file:///etc/passwd",
            "ext::sh -c touch% /tmp/x",
            "https://github.com",
            "https:///acme/widgets",
            "https://-oProxyCommand=x/repo",
            "https://github.com/acme/widgets .git",
            "git@github.com:-upload-pack=x",
            "-x@github.com:acme/w",
            "ssh://-oProxyCommand=x@host/repo",
            "github.com/acme/widgets",
            "g",
        ] {
            assert!(!valid_url(bad), "{bad}");
        }
    }

    #[test]
    fn branches_follow_git_s_ref_rules() {
        for good in [
            "main",
            "trunk",
            "release/2026.12",
            "feature/x-1",
            "gt/toast/abcdef01",
        ] {
            assert!(valid_branch(good), "{good}");
        }
        for bad in [
            "",
            "-b; rm -rf /",
            "a b",
            "a..b",
            "a@{1}",
            "@",
            "/main",
            "main/",
            "main.",
            "a//b",
            ".hidden",
            "x/.y",
            "topic.lock",
            "a~1",
            "a^",
            "a:b",
            "a?",
            "a*",
            "a[b",
            "a\\b",
            "a\u{7f}",
        ] {
            assert!(!valid_branch(bad), "{bad:?}");
        }
        assert!(!valid_branch(&"x".repeat(256)));
    }
}
