//! What the rules read: one consistent picture of the town's live work, indexed so that every
//! lookup a rule makes per bead or agent is a hash probe or a walk over that bead's own edges
//! (reconciling a 10,000-bead town stays linear).
//!
//! A snapshot is made only by [`SnapshotBuilder`], from stored rows (`reconciler::load::snapshot`) or
//! from fixtures in tests; the builder puts everything in one canonical order (beads and agents
//! by `created_at`, then id), so two snapshots of the same facts are equal and the rules'
//! output order is deterministic.
//!
//! What it holds (see `reconciler::load` for the exact row selection): every non-terminal bead
//! plus each terminal bead a rule or invariant can ask about, every agent, the review rows of live
//! merge requests, the metadata of live convoys, the dependency edges touching a live bead, the
//! reconciler's nudges of the last hour, the rigs, and the town-level state below. Dependency
//! edges whose other end is not in the snapshot are dropped: a blocker that does not exist does
//! not block (as the original's inner join).

use crate::vocabulary::model::{
    Agent, Bead, Convoy, Dependency, DependencyType, Nudge, Review, Rig,
};
use crate::vocabulary::time::Millis;
use std::collections::{HashMap, HashSet};

/// Town-level state the rules read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TownState {
    /// The container is being evicted (GASTOWN-DOMAIN.md 5.3).
    pub draining: bool,
    /// `refinery.code_review` of the town config.
    pub refinery_code_review: bool,
    /// When the mayor was told the dispatch circuit breaker opened; `None` while not told.
    pub breaker_notified_at: Option<String>,
    /// When the town's previous tick ended (ISO); `None` before its first. Staleness that only
    /// accrued while the town was not ticking is not held against a review (R4).
    pub previous_tick_at: Option<String>,
}

impl Default for TownState {
    fn default() -> Self {
        Self {
            draining: false,
            refinery_code_review: true,
            breaker_notified_at: None,
            previous_tick_at: None,
        }
    }
}

/// A bead's dependency edges, as positions in [`Snapshot::beads`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Edges {
    /// `blocks` edges out: the beads this one waits for.
    blocked_by: Vec<usize>,
    /// `tracks` edges out: the beads this one tracks (MR -> source, member -> convoy).
    tracks: Vec<usize>,
    /// `tracks` edges in: the beads tracking this one.
    tracked_by: Vec<usize>,
}

/// The town as the reconciler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    town: TownState,
    beads: Vec<Bead>,
    bead_at: HashMap<String, usize>,
    edges: Vec<Edges>,
    dispatch_failed: HashSet<String>,
    agents: Vec<Agent>,
    /// Hooked bead id -> positions in `agents` (the bead may not exist).
    hooked: HashMap<String, Vec<usize>>,
    reviews: HashMap<String, Review>,
    convoys: HashMap<String, Convoy>,
    /// Agent id -> its recent reconciler nudges.
    nudges: HashMap<String, Vec<Nudge>>,
    rigs: HashMap<String, Rig>,
}

impl Snapshot {
    pub fn town(&self) -> &TownState {
        &self.town
    }

    /// Every bead, oldest first.
    pub fn beads(&self) -> &[Bead] {
        &self.beads
    }

    pub fn bead(&self, bead_id: &str) -> Option<&Bead> {
        self.bead_at.get(bead_id).map(|&i| &self.beads[i])
    }

    /// Every agent, oldest first.
    pub fn agents(&self) -> &[Agent] {
        &self.agents
    }

    /// The agents whose hook is `bead_id`, oldest first.
    pub fn hooked_to<'a>(&'a self, bead_id: &str) -> impl Iterator<Item = &'a Agent> + 'a {
        self.hooked
            .get(bead_id)
            .into_iter()
            .flatten()
            .map(|&i| &self.agents[i])
    }

    /// Each hooked bead id with the number of agents hooked to it.
    pub fn hooks(&self) -> impl Iterator<Item = (&str, usize)> {
        self.hooked.iter().map(|(b, a)| (b.as_str(), a.len()))
    }

    /// The review row of a live merge request.
    pub fn review(&self, mr_id: &str) -> Option<&Review> {
        self.reviews.get(mr_id)
    }

    /// The metadata of a live convoy.
    pub fn convoy(&self, convoy_id: &str) -> Option<&Convoy> {
        self.convoys.get(convoy_id)
    }

    pub fn rig(&self, rig_id: &str) -> Option<&Rig> {
        self.rigs.get(rig_id)
    }

    /// The beads whose last dispatch attempt failed (in no particular order).
    pub fn dispatch_failures(&self) -> impl Iterator<Item = &Bead> {
        self.dispatch_failed.iter().filter_map(|id| self.bead(id))
    }

    /// The beads `bead_id` waits for (`blocks` edges out).
    pub fn blockers<'a>(&'a self, bead_id: &str) -> impl Iterator<Item = &'a Bead> + 'a {
        self.edge_list(bead_id, |e| &e.blocked_by)
    }

    /// Whether any blocker of `bead_id` is still live (not closed or failed).
    pub fn is_blocked(&self, bead_id: &str) -> bool {
        self.blockers(bead_id).any(|b| !b.status.is_terminal())
    }

    /// The beads `bead_id` tracks.
    pub fn tracks<'a>(&'a self, bead_id: &str) -> impl Iterator<Item = &'a Bead> + 'a {
        self.edge_list(bead_id, |e| &e.tracks)
    }

    /// The beads that track `bead_id`, oldest first.
    pub fn tracked_by<'a>(&'a self, bead_id: &str) -> impl Iterator<Item = &'a Bead> + 'a {
        self.edge_list(bead_id, |e| &e.tracked_by)
    }

    fn edge_list<'a>(
        &'a self,
        bead_id: &str,
        pick: fn(&Edges) -> &Vec<usize>,
    ) -> impl Iterator<Item = &'a Bead> + 'a {
        self.bead_at
            .get(bead_id)
            .into_iter()
            .flat_map(move |&i| pick(&self.edges[i]).iter())
            .map(|&j| &self.beads[j])
    }

    /// Whether a nudge with `source` was sent to the agent at most `window` before `now` (the
    /// snapshot holds the reconciler's nudges of the last hour). Both the ISO and SQLite's
    /// `YYYY-MM-DD HH:MM:SS` formats are read (#1412).
    pub fn nudged_since(&self, agent_id: &str, source: &str, now: Millis, window: Millis) -> bool {
        self.nudges.get(agent_id).into_iter().flatten().any(|n| {
            n.source == source && !super::timing::is_stale(Some(&n.created_at), now, window)
        })
    }
}

/// Builds a [`Snapshot`]: from stored rows in the loader, from fixtures in tests. An entity
/// added again with the same id replaces the earlier one.
#[derive(Debug, Clone, Default)]
pub struct SnapshotBuilder {
    town: TownState,
    beads: Vec<Bead>,
    dispatch_failed: HashSet<String>,
    agents: Vec<Agent>,
    reviews: Vec<Review>,
    convoys: Vec<Convoy>,
    dependencies: Vec<Dependency>,
    nudges: Vec<Nudge>,
    rigs: Vec<Rig>,
}

impl SnapshotBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn town(mut self, town: TownState) -> Self {
        self.town = town;
        self
    }

    pub fn draining(mut self, draining: bool) -> Self {
        self.town.draining = draining;
        self
    }

    pub fn refinery_code_review(mut self, on: bool) -> Self {
        self.town.refinery_code_review = on;
        self
    }

    pub fn breaker_notified_at(mut self, at: &str) -> Self {
        self.town.breaker_notified_at = Some(at.to_owned());
        self
    }

    pub fn bead(mut self, bead: impl Into<Bead>) -> Self {
        self.beads.push(bead.into());
        self
    }

    /// Records that `bead_id`'s last dispatch attempt failed (`last_dispatch_error` is set).
    pub fn dispatch_failed(mut self, bead_id: &str) -> Self {
        self.dispatch_failed.insert(bead_id.to_owned());
        self
    }

    pub fn agent(mut self, agent: impl Into<Agent>) -> Self {
        self.agents.push(agent.into());
        self
    }

    pub fn review(mut self, review: impl Into<Review>) -> Self {
        self.reviews.push(review.into());
        self
    }

    pub fn convoy(mut self, convoy: impl Into<Convoy>) -> Self {
        self.convoys.push(convoy.into());
        self
    }

    pub fn dependency(mut self, dependency: Dependency) -> Self {
        self.dependencies.push(dependency);
        self
    }

    /// The ends of the edges added so far that are not among the beads added so far, each
    /// once, in the order the edges name them.
    pub fn missing_ends(&self) -> Vec<String> {
        let mut known: HashSet<&str> = self.beads.iter().map(|b| b.bead_id.as_str()).collect();
        self.dependencies
            .iter()
            .flat_map(|d| [d.bead_id.as_str(), d.depends_on_bead_id.as_str()])
            .filter(|end| known.insert(end))
            .map(str::to_owned)
            .collect()
    }

    /// `bead_id` waits for `blocker` (a `blocks` edge).
    pub fn blocks_on(self, bead_id: &str, blocker: &str) -> Self {
        self.edge(bead_id, blocker, DependencyType::Blocks)
    }

    /// `bead_id` tracks `tracked` (MR -> source, member -> convoy).
    pub fn tracks(self, bead_id: &str, tracked: &str) -> Self {
        self.edge(bead_id, tracked, DependencyType::Tracks)
    }

    fn edge(self, bead_id: &str, depends_on: &str, dependency_type: DependencyType) -> Self {
        self.dependency(Dependency {
            bead_id: bead_id.to_owned(),
            depends_on_bead_id: depends_on.to_owned(),
            dependency_type,
        })
    }

    pub fn nudge(mut self, nudge: Nudge) -> Self {
        self.nudges.push(nudge);
        self
    }

    pub fn rig(mut self, rig: Rig) -> Self {
        self.rigs.push(rig);
        self
    }

    /// Orders and indexes everything.
    pub fn build(self) -> Snapshot {
        let mut beads = last_by_id(self.beads, |b| &b.bead_id);
        beads.sort_by(|a, b| (&a.created_at, &a.bead_id).cmp(&(&b.created_at, &b.bead_id)));
        let bead_at: HashMap<String, usize> = beads
            .iter()
            .enumerate()
            .map(|(i, b)| (b.bead_id.clone(), i))
            .collect();

        let mut edges = vec![Edges::default(); beads.len()];
        for d in &self.dependencies {
            let (Some(&from), Some(&to)) =
                (bead_at.get(&d.bead_id), bead_at.get(&d.depends_on_bead_id))
            else {
                continue;
            };
            match d.dependency_type {
                DependencyType::Blocks => edges[from].blocked_by.push(to),
                DependencyType::Tracks => {
                    edges[from].tracks.push(to);
                    edges[to].tracked_by.push(from);
                }
                DependencyType::ParentChild => {}
            }
        }
        for e in &mut edges {
            for list in [&mut e.blocked_by, &mut e.tracks, &mut e.tracked_by] {
                list.sort_unstable();
                list.dedup();
            }
        }

        let mut agents = last_by_id(self.agents, |a| &a.agent_id);
        agents.sort_by(|a, b| (&a.created_at, &a.agent_id).cmp(&(&b.created_at, &b.agent_id)));
        let mut hooked: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, a) in agents.iter().enumerate() {
            if let Some(hook) = &a.current_hook_bead_id {
                hooked.entry(hook.clone()).or_default().push(i);
            }
        }

        let mut nudges: HashMap<String, Vec<Nudge>> = HashMap::new();
        for n in self.nudges {
            nudges.entry(n.agent_bead_id.clone()).or_default().push(n);
        }
        for list in nudges.values_mut() {
            list.sort_by(|a, b| (&a.created_at, &a.nudge_id).cmp(&(&b.created_at, &b.nudge_id)));
        }

        Snapshot {
            town: self.town,
            beads,
            bead_at,
            edges,
            dispatch_failed: self.dispatch_failed,
            agents,
            hooked,
            reviews: by_id(self.reviews, |r| &r.bead_id),
            convoys: by_id(self.convoys, |c| &c.bead_id),
            nudges,
            rigs: by_id(self.rigs, |r| &r.rig_id),
        }
    }
}

/// The items with distinct ids, a later one replacing an earlier one with the same id.
fn last_by_id<T>(items: Vec<T>, id: fn(&T) -> &String) -> Vec<T> {
    let mut seen = HashSet::new();
    let mut kept: Vec<T> = items
        .into_iter()
        .rev()
        .filter(|t| seen.insert(id(t).clone()))
        .collect();
    kept.reverse();
    kept
}

fn by_id<T>(items: Vec<T>, id: fn(&T) -> &String) -> HashMap<String, T> {
    items.into_iter().map(|t| (id(&t).clone(), t)).collect()
}
