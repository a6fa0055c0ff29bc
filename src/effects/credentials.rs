//! What the container is told about its town (UPSTREAM-WIRE.md section 1): the `X-Town-Config`
//! header, each agent's environment (the town's `env_vars`, git and LLM credentials, the commit
//! identity, the API URL and the two JWTs), and each role's model.
//!
//! Tokens are minted here, once per batch of calls: the container token (one per container,
//! shared by its agents) and each agent's legacy session token, both signed with
//! `GASTOWN_JWT_SECRET`. Without the secret nothing is minted, and no start is sent.

use super::container::StartRole;
use crate::jwt;
use crate::store::town::Town;
use crate::vocabulary::config::TownConfig;
use crate::vocabulary::time::Millis;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// The model when neither the role nor the town names one (the original's default).
pub const DEFAULT_MODEL: &str = "anthropic/claude-sonnet-4.6";
/// The small model when the town names none (the original's default).
pub const DEFAULT_SMALL_MODEL: &str = "anthropic/claude-haiku-4.5";

/// Why no credentials could be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoCredentials {
    /// `GASTOWN_JWT_SECRET` is not set: a token signed with no key would be forgeable.
    NoJwtSecret,
}

impl fmt::Display for NoCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoCredentials::NoJwtSecret => f.write_str(
                "GASTOWN_JWT_SECRET is not set: no container token can be minted, so no agent is started",
            ),
        }
    }
}

impl std::error::Error for NoCredentials {}

/// The model a role runs: the town's model for the role, else its default model, else
/// [`DEFAULT_MODEL`]. (The original also lets a rig override them; our rigs carry no models.)
pub fn model(config: &TownConfig, role: StartRole) -> String {
    let for_role = match role {
        StartRole::Polecat => config.role_models.polecat.as_ref(),
        StartRole::Refinery => config.role_models.refinery.as_ref(),
        StartRole::Mayor => config.role_models.mayor.as_ref(),
    };
    for_role.cloned().unwrap_or_else(|| default_model(config))
}

/// The town's default model, else [`DEFAULT_MODEL`].
pub fn default_model(config: &TownConfig) -> String {
    config
        .default_model
        .clone()
        .unwrap_or_else(|| DEFAULT_MODEL.to_owned())
}

/// The small model: the town's, else [`DEFAULT_SMALL_MODEL`].
pub fn small_model(config: &TownConfig) -> String {
    config
        .small_model
        .clone()
        .unwrap_or_else(|| DEFAULT_SMALL_MODEL.to_owned())
}

/// The `X-Town-Config` header of `town`, as JSON whose every non-ASCII character is escaped
/// (a header value must be Latin-1; the escaped text parses to the same object).
pub fn town_config(town: &Town, gastown_api_url: &str) -> String {
    let c = &town.config;
    let header = Header {
        town_id: &town.town_id,
        env_vars: &c.env_vars,
        default_model: default_model(c),
        small_model: small_model(c),
        git_auth: GitAuthHeader {
            github_token: c.git_auth.github_token.as_deref(),
            gitlab_token: c.git_auth.gitlab_token.as_deref(),
            gitlab_instance_url: c.git_auth.gitlab_instance_url.as_deref(),
            platform_integration_id: c.git_auth.platform_integration_id.as_deref(),
        },
        kilocode_token: c.kilocode_token.as_deref(),
        github_cli_pat: c.github_cli_pat.as_deref(),
        git_author_name: c.git_author_name.as_deref(),
        git_author_email: c.git_author_email.as_deref(),
        disable_ai_coauthor: c.disable_ai_coauthor,
        gastown_api_url,
        organization_id: c.organization_id.as_deref(),
    };
    ascii_json(&serde_json::to_string(&header).expect("the header serializes"))
}

/// The digest of an `X-Town-Config` header (hex SHA-256): what the town remembers of the config
/// the container accepted, without keeping its secrets twice.
pub fn config_digest(header: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(header.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Serialize)]
struct Header<'a> {
    town_id: &'a str,
    env_vars: &'a BTreeMap<String, String>,
    default_model: String,
    small_model: String,
    git_auth: GitAuthHeader<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kilocode_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    github_cli_pat: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    git_author_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    git_author_email: Option<&'a str>,
    disable_ai_coauthor: bool,
    gastown_api_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    organization_id: Option<&'a str>,
}

#[derive(Serialize)]
struct GitAuthHeader<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    github_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gitlab_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gitlab_instance_url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform_integration_id: Option<&'a str>,
}

/// JSON text with every non-ASCII character as `\uXXXX` (surrogate pairs above U+FFFF).
fn ascii_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// The tokens and credentials of one batch of calls to a town's container.
#[derive(Debug, Clone)]
pub struct Credentials<'a> {
    town: &'a Town,
    secret: &'a str,
    gastown_api_url: &'a str,
    now: Millis,
    /// The container token minted for this batch.
    container_token: String,
}

impl<'a> Credentials<'a> {
    /// Mints the batch's container token, or says why it cannot.
    pub fn new(
        town: &'a Town,
        secret: &'a str,
        gastown_api_url: &'a str,
        now: Millis,
    ) -> Result<Self, NoCredentials> {
        if secret.is_empty() {
            return Err(NoCredentials::NoJwtSecret);
        }
        let container_token = jwt::sign_container(secret, &town.town_id, user_id(town), now);
        Ok(Self {
            town,
            secret,
            gastown_api_url,
            now,
            container_token,
        })
    }

    pub fn town(&self) -> &Town {
        self.town
    }

    /// The container token (`GASTOWN_CONTAINER_TOKEN`, and what `/refresh-token` pushes).
    pub fn container_token(&self) -> &str {
        &self.container_token
    }

    /// The `X-Town-Config` header.
    pub fn town_config(&self) -> String {
        town_config(self.town, self.gastown_api_url)
    }

    /// An agent's environment: the town's `env_vars`, then (overriding them) the credentials,
    /// the commit identity, the API URL and the two tokens. Unset values are left out.
    pub fn env_vars(&self, agent_id: &str, rig_id: &str) -> BTreeMap<String, String> {
        let c = &self.town.config;
        let mut env = c.env_vars.clone();
        let mut set = |name: &str, value: Option<&str>| {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                env.insert(name.to_owned(), v.to_owned());
            }
        };
        set("GIT_TOKEN", c.git_auth.github_token.as_deref());
        set("GITLAB_TOKEN", c.git_auth.gitlab_token.as_deref());
        set(
            "GITLAB_INSTANCE_URL",
            c.git_auth.gitlab_instance_url.as_deref(),
        );
        set("GITHUB_CLI_PAT", c.github_cli_pat.as_deref());
        set("GASTOWN_GIT_AUTHOR_NAME", c.git_author_name.as_deref());
        set("GASTOWN_GIT_AUTHOR_EMAIL", c.git_author_email.as_deref());
        set(
            "GASTOWN_DISABLE_AI_COAUTHOR",
            c.disable_ai_coauthor.then_some("1"),
        );
        set("KILOCODE_TOKEN", c.kilocode_token.as_deref());
        set("GASTOWN_API_URL", Some(self.gastown_api_url));
        set("GASTOWN_CONTAINER_TOKEN", Some(&self.container_token));
        let session = jwt::sign_agent(
            self.secret,
            agent_id,
            rig_id,
            &self.town.town_id,
            user_id(self.town),
            self.now,
        );
        set("GASTOWN_SESSION_TOKEN", Some(&session));
        env
    }
}

/// The user a town's tokens speak for: its owner, else the town itself (as the original).
fn user_id(town: &Town) -> &str {
    if town.owner_user_id.is_empty() {
        &town.town_id
    } else {
        &town.owner_user_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_is_escaped_and_parses_back() {
        let text = serde_json::to_string(&serde_json::json!({"n": "Zoë 🚂"})).unwrap();
        let escaped = ascii_json(&text);
        assert!(escaped.is_ascii(), "{escaped}");
        assert_eq!(escaped, r#"{"n":"Zo\u00eb \ud83d\ude82"}"#);
        let back: serde_json::Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(back["n"], "Zoë 🚂");
    }
}
