//! Town configuration (GASTOWN-DOMAIN.md 1.7): what the town owner may set, its defaults and
//! its validation. Stored as one JSON object; updates are JSON merge patches validated whole.
//! The names follow the original's town config (`dos/town/config.ts`), including what the
//! container needs to run agents (models, env vars, git identity, organization).

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// How finished work reaches the default branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MergeStrategy {
    /// The refinery merges itself; reviews of one rig run one at a time.
    #[default]
    Direct,
    /// A pull request is opened and the town polls the PR host.
    Pr,
}

/// What a refinery does with changes it wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReviewMode {
    #[default]
    Rework,
    Comments,
}

/// The refinery (reviewer and merger) settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RefineryConfig {
    pub gates: Vec<String>,
    pub auto_merge: bool,
    pub require_clean_merge: bool,
    pub code_review: bool,
    pub review_mode: ReviewMode,
    pub auto_resolve_pr_feedback: bool,
    /// Minutes a PR must stay all-green before the town merges it; `None` disables the timer.
    pub auto_merge_delay_minutes: Option<u32>,
}

impl Default for RefineryConfig {
    fn default() -> Self {
        Self {
            gates: Vec::new(),
            auto_merge: true,
            require_clean_merge: false,
            code_review: true,
            review_mode: ReviewMode::Rework,
            auto_resolve_pr_feedback: false,
            auto_merge_delay_minutes: None,
        }
    }
}

/// Credentials for the PR host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GitAuth {
    pub github_token: Option<String>,
    pub gitlab_token: Option<String>,
    pub gitlab_instance_url: Option<String>,
    pub platform_integration_id: Option<String>,
}

/// Models per role; unset roles use the town's `default_model`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoleModels {
    pub polecat: Option<String>,
    pub refinery: Option<String>,
    pub mayor: Option<String>,
}

/// The whole town configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TownConfig {
    pub merge_strategy: MergeStrategy,
    pub refinery: RefineryConfig,
    pub git_auth: GitAuth,
    pub github_cli_pat: Option<String>,
    pub kilocode_token: Option<String>,
    pub default_model: Option<String>,
    /// The lightweight model (titles, the explore subagent).
    pub small_model: Option<String>,
    pub role_models: RoleModels,
    /// Extra environment of every agent the container starts.
    pub env_vars: BTreeMap<String, String>,
    /// The commit identity of the agents.
    pub git_author_name: Option<String>,
    pub git_author_email: Option<String>,
    /// No AI co-author trailer on the agents' commits.
    pub disable_ai_coauthor: bool,
    /// Set for organization-owned towns, so agents bill to the organization.
    pub organization_id: Option<String>,
    pub staged_convoys_default: bool,
    /// Seconds between ticks while there is work (5-600).
    pub alarm_interval_active: Option<u32>,
    /// Seconds between ticks while idle (30-3600).
    pub alarm_interval_idle: Option<u32>,
}

/// What a secret of the configuration shows as in any answer.
pub const REDACTED: &str = "***";

/// The secrets of a configuration, by path: credentials, and every value of `env_vars`.
const SECRETS: [&[&str]; 4] = [
    &["git_auth", "github_token"],
    &["git_auth", "gitlab_token"],
    &["github_cli_pat"],
    &["kilocode_token"],
];

/// Why a configuration was refused; `field` names the offending key.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl TownConfig {
    /// Parses and validates a whole configuration object.
    pub fn from_json(v: &Json) -> Result<Self, ConfigError> {
        let config: TownConfig = crate::json::read(v.clone()).map_err(|misfit| ConfigError {
            field: field_of(&misfit.error.to_string()),
            message: misfit.error.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The configuration as an answer shows it: each secret that is set as [`REDACTED`]
    /// (unset ones stay `null`), and `env_vars` with their names but not their values.
    pub fn redacted(&self) -> Json {
        let mut shown = serde_json::to_value(self).expect("config serializes");
        for path in SECRETS {
            let (last, parents) = path.split_last().expect("paths are not empty");
            let parent = parents.iter().fold(&mut shown, |v, key| &mut v[*key]);
            if parent.get(*last).is_some_and(|v| !v.is_null()) {
                parent[*last] = REDACTED.into();
            }
        }
        if let Some(vars) = shown["env_vars"].as_object_mut() {
            vars.values_mut().for_each(|v| *v = REDACTED.into());
        }
        shown
    }

    /// Applies a JSON merge patch (RFC 7396) and validates the result.
    pub fn patched(&self, patch: &Json) -> Result<Self, ConfigError> {
        if !patch.is_object() {
            return Err(ConfigError {
                field: "config".into(),
                message: "config must be a JSON object".into(),
            });
        }
        let mut whole = serde_json::to_value(self).expect("config serializes");
        merge_patch(&mut whole, patch);
        Self::from_json(&whole)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let range = |field: &str, v: Option<u32>, lo: u32, hi: u32| match v {
            Some(s) if !(lo..=hi).contains(&s) => Err(ConfigError {
                field: field.into(),
                message: format!("{field} must be between {lo} and {hi} seconds, got {s}"),
            }),
            _ => Ok(()),
        };
        range("alarm_interval_active", self.alarm_interval_active, 5, 600)?;
        range("alarm_interval_idle", self.alarm_interval_idle, 30, 3600)?;
        let models = [
            ("default_model", &self.default_model),
            ("small_model", &self.small_model),
            ("role_models.polecat", &self.role_models.polecat),
            ("role_models.refinery", &self.role_models.refinery),
            ("role_models.mayor", &self.role_models.mayor),
        ];
        for (field, model) in models {
            if model.as_deref().is_some_and(|m| m.trim().is_empty()) {
                return Err(ConfigError {
                    field: field.into(),
                    message: format!("{field} must not be empty (remove it to use the default)"),
                });
            }
        }
        if let Some(name) = self.env_vars.keys().find(|k| !is_env_name(k)) {
            return Err(ConfigError {
                field: "env_vars".into(),
                message: format!(
                    "env_vars name {name:?} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
                ),
            });
        }
        Ok(())
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`: a name a shell and a process environment both accept.
fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn merge_patch(target: &mut Json, patch: &Json) {
    match (target, patch) {
        (Json::Object(t), Json::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Json::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// serde names the bad key in backticks ("unknown field `x`"); fall back to "config".
fn field_of(message: &str) -> String {
    message
        .split('`')
        .nth(1)
        .map_or_else(|| "config".to_owned(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_match_the_original() {
        let c = TownConfig::from_json(&json!({})).unwrap();
        assert_eq!(c.merge_strategy, MergeStrategy::Direct);
        assert!(c.refinery.code_review && c.refinery.auto_merge);
        assert!(!c.refinery.auto_resolve_pr_feedback);
        assert_eq!(c.refinery.auto_merge_delay_minutes, None);
        assert!(!c.staged_convoys_default);
    }

    #[test]
    fn answers_show_that_a_secret_is_set_but_never_its_value() {
        let c = TownConfig::from_json(&json!({
            "git_auth": {"github_token": "ghp_secret", "gitlab_instance_url": "https://gl.example"},
            "kilocode_token": "kilo_secret",
            "env_vars": {"OPENAI_KEY": "sk-secret"},
            "default_model": "m",
        }))
        .unwrap();
        let shown = c.redacted();
        assert_eq!(shown["git_auth"]["github_token"], REDACTED);
        assert_eq!(shown["git_auth"]["gitlab_token"], Json::Null);
        assert_eq!(
            shown["git_auth"]["gitlab_instance_url"],
            "https://gl.example"
        );
        assert_eq!(shown["kilocode_token"], REDACTED);
        assert_eq!(shown["github_cli_pat"], Json::Null);
        assert_eq!(shown["env_vars"], json!({"OPENAI_KEY": REDACTED}));
        assert_eq!(shown["default_model"], "m");
        assert!(!shown.to_string().contains("secret"), "{shown}");
    }

    #[test]
    fn merge_patch_keeps_what_it_does_not_name() {
        let c = TownConfig::from_json(
            &json!({"merge_strategy": "pr", "refinery": {"gates": ["npm test"]}}),
        )
        .unwrap();
        let p = c
            .patched(&json!({"refinery": {"code_review": false}}))
            .unwrap();
        assert_eq!(p.merge_strategy, MergeStrategy::Pr);
        assert_eq!(p.refinery.gates, vec!["npm test"]);
        assert!(!p.refinery.code_review);
    }

    #[test]
    fn refuses_unknown_keys_wrong_types_and_out_of_range_intervals() {
        let e = TownConfig::from_json(&json!({"merge_strategi": "pr"})).unwrap_err();
        assert_eq!(e.field, "merge_strategi");
        assert!(TownConfig::from_json(&json!({"merge_strategy": "rebase"})).is_err());
        assert!(TownConfig::from_json(&json!({"refinery": {"auto_merge": "yes"}})).is_err());
        let e = TownConfig::from_json(&json!({"alarm_interval_active": 4})).unwrap_err();
        assert_eq!(e.field, "alarm_interval_active");
        assert!(TownConfig::from_json(&json!({"alarm_interval_idle": 3601})).is_err());
        assert!(TownConfig::from_json(&json!({"alarm_interval_idle": 3600})).is_ok());
    }

    #[test]
    fn container_settings_parse_with_the_original_names() {
        let c = TownConfig::from_json(&json!({
            "default_model": "m/default", "small_model": "m/small",
            "role_models": {"polecat": "m/polecat", "mayor": "m/mayor"},
            "env_vars": {"NODE_ENV": "test", "_X1": ""},
            "git_author_name": "Gas Town", "git_author_email": "gt@example.com",
            "disable_ai_coauthor": true, "organization_id": "org-1"
        }))
        .unwrap();
        assert_eq!(c.role_models.polecat.as_deref(), Some("m/polecat"));
        assert_eq!(c.role_models.refinery, None);
        assert_eq!(c.env_vars["NODE_ENV"], "test");
        assert!(c.disable_ai_coauthor);
        let defaults = TownConfig::from_json(&json!({})).unwrap();
        assert!(defaults.env_vars.is_empty() && !defaults.disable_ai_coauthor);
    }

    #[test]
    fn refuses_empty_models_bad_env_names_and_unknown_roles() {
        let e = TownConfig::from_json(&json!({"small_model": " "})).unwrap_err();
        assert_eq!(e.field, "small_model");
        let e = TownConfig::from_json(&json!({"role_models": {"mayor": ""}})).unwrap_err();
        assert_eq!(e.field, "role_models.mayor");
        for bad in ["1X", "A-B", "", "A=B"] {
            let e = TownConfig::from_json(&json!({"env_vars": {bad: "v"}})).unwrap_err();
            assert_eq!(e.field, "env_vars", "{bad:?}");
        }
        assert!(TownConfig::from_json(&json!({"env_vars": {"A": 1}})).is_err());
        let e = TownConfig::from_json(&json!({"role_models": {"witness": "m"}})).unwrap_err();
        assert_eq!(e.field, "witness");
    }
}
