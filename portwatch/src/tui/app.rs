//! The TUI's state: the latest [`ViewData`], what is selected, open, filtered and sorted.
//! Keys change it through [`super::on_key`]; renderers only read it.

use super::{
    data::{Drill, DrillTarget, SourceInfo, ViewData},
    eventlog::{DEFAULT_CAPACITY, EventLog},
    rows::{RowId, Rows, Tab, drill_rows},
    theme::Theme,
};
use crate::{
    event::Event,
    explain::finding::Finding,
    model::{FailureGroup, ListenerStats, PoolKey, PoolStats, ProcessGroupStats, ProcessStats},
    timeline::{PoolSeries, Timeline},
};

/// How the App is set up; the session decides these once at start.
#[derive(Clone, Debug)]
pub struct Options {
    /// Colours allowed: [`super::theme::color_from_env`] (`NO_COLOR`).
    pub color: bool,
    /// Events kept for the events tab.
    pub event_capacity: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            color: true,
            event_capacity: DEFAULT_CAPACITY,
        }
    }
}

/// An open drill-down.
#[derive(Clone, Debug, PartialEq)]
pub struct DrillState {
    pub target: DrillTarget,
    /// First socket row shown.
    pub scroll: usize,
    /// Index into [`super::rows::DRILL_SORTS`].
    pub sort: usize,
}

pub struct App {
    pub(super) view: ViewData,
    /// The newest data while the display is paused (live mode).
    held: Option<Box<ViewData>>,
    pub(super) theme: Theme,
    pub(super) tab: Tab,
    pub(super) help: bool,
    pub(super) drill: Option<DrillState>,
    /// Socket order of the drill-down shown.
    pub(super) drill_rows: Vec<usize>,
    /// The filter of the current tab is being typed.
    pub(super) typing: bool,
    /// Per tab, lower-cased.
    pub(super) filters: [String; 6],
    pub(super) sorts: [usize; 6],
    /// Selected row per tab (index into that tab's rows).
    pub(super) sel: [usize; 6],
    sel_id: [Option<RowId>; 6],
    /// The selected finding shows its evidence and every remedy.
    pub(super) expanded: bool,
    /// Processes tab: by command and parent instead of by pid.
    pub(super) grouped: bool,
    pub(super) display_paused: bool,
    pub(super) rows: Rows,
    pub(super) events: EventLog,
    /// The pools' recent history, sampled from every snapshot taken: what the charts draw.
    timeline: Timeline,
}

/// Seconds of history the charts keep (a 200-column chart shows about three minutes).
pub const CHART_WINDOW_S: u64 = 600;

impl App {
    pub fn new(opts: Options) -> App {
        App {
            view: ViewData::empty(SourceInfo::Live),
            held: None,
            theme: Theme { color: opts.color },
            tab: Tab::Overview,
            help: false,
            drill: None,
            drill_rows: Vec::new(),
            typing: false,
            filters: Default::default(),
            sorts: [0; 6],
            sel: [0; 6],
            sel_id: Default::default(),
            expanded: false,
            grouped: false,
            display_paused: false,
            rows: Rows::default(),
            events: EventLog::new(opts.event_capacity),
            timeline: Timeline::window(CHART_WINDOW_S),
        }
    }

    /// Samples the timeline from a refresh, once per second of model time, as the HTML
    /// report's is: the pools shown, and a drill-down's pool that is not among them.
    /// [`App::update`] calls it with every refresh.
    pub(super) fn sample(&mut self, v: &ViewData) {
        let s = &v.snapshot;
        if self.timeline.last_ns().is_some_and(|last| s.at_ns < last) {
            // Time went back (a replay seeked back and rebuilt its model): a new history.
            self.timeline = Timeline::window(CHART_WINDOW_S);
        }
        if !self.timeline.due(s.at_ns) {
            return;
        }
        let drilled = v.drill.as_ref().and_then(|d| d.pool.as_ref());
        match drilled.filter(|d| !s.pools.iter().any(|p| p.key() == d.key())) {
            Some(d) => {
                let mut pools = s.pools.clone();
                pools.push(d.clone());
                self.timeline.sample(s.at_ns, &pools, &s.findings);
            }
            None => self.timeline.sample(s.at_ns, &s.pools, &s.findings),
        }
    }

    /// A pool's history, for its chart.
    pub(super) fn series(&self, key: &PoolKey) -> Option<&PoolSeries> {
        self.timeline.pool(key)
    }

    /// Takes a refresh. While the display is paused (live) the data is held back, except the
    /// drill-down that was asked for.
    pub fn update(&mut self, v: ViewData) {
        // Sampled while the display is paused too; charts draw up to the time shown.
        self.sample(&v);
        if self.display_paused {
            if let (Some(d), Some(want)) = (&v.drill, self.drill_request())
                && d.target == want
            {
                self.view.drill = v.drill.clone();
                self.rebuild_drill_rows();
            }
            self.held = Some(Box::new(v));
            return;
        }
        self.view = v;
        self.rebuild();
        self.rebuild_drill_rows();
    }

    /// Adds events to the events tab (only the newest [`Options::event_capacity`] are kept).
    pub fn push_events(&mut self, events: &[Event]) {
        self.events.push(events);
    }

    /// Delivers a drill-down alone, without waiting for the next refresh (e.g. right after
    /// a key opened one). Ignored unless it answers the current [`App::drill_request`].
    pub fn set_drill(&mut self, d: Drill) {
        if self.drill_request().as_ref() == Some(&d.target) {
            self.view.drill = Some(d);
            self.rebuild_drill_rows();
        }
    }

    /// The drill-down the session should compute (with [`super::drill::collect`]) and put in
    /// [`ViewData::drill`] on every refresh while this is `Some`.
    pub fn drill_request(&self) -> Option<DrillTarget> {
        self.drill.as_ref().map(|d| d.target.clone())
    }

    /// Live mode: the display is frozen with `p`.
    pub fn is_display_paused(&self) -> bool {
        self.display_paused
    }

    pub fn source(&self) -> &SourceInfo {
        &self.view.source
    }

    pub fn tab(&self) -> Tab {
        self.tab
    }

    pub(super) fn set_display_paused(&mut self, paused: bool) {
        self.display_paused = paused;
        self.events.set_paused(paused);
        if !paused && let Some(v) = self.held.take() {
            self.update(*v);
        }
    }

    /// The drill-down data for the open drill-down, once the session has delivered it.
    pub(super) fn drill_data(&self) -> Option<&Drill> {
        let want = &self.drill.as_ref()?.target;
        self.view.drill.as_ref().filter(|d| &d.target == want)
    }

    pub(super) fn open_drill(&mut self, target: DrillTarget) {
        self.drill = Some(DrillState {
            target,
            scroll: 0,
            sort: 0,
        });
        self.rebuild_drill_rows();
    }

    pub(super) fn rebuild_drill_rows(&mut self) {
        let sort = self.drill.as_ref().map_or(0, |d| d.sort);
        self.drill_rows = self
            .drill_data()
            .map_or_else(Vec::new, |d| drill_rows(d, sort));
        if let Some(d) = &mut self.drill {
            d.scroll = d.scroll.min(self.drill_rows.len().saturating_sub(1));
        }
    }

    /// Re-filters and re-sorts every tab, keeping each selection on the same row.
    pub(super) fn rebuild(&mut self) {
        self.rows = Rows::build(&self.view, &self.filters, &self.sorts);
        for t in Tab::ALL {
            if t == Tab::Events {
                continue;
            }
            let len = self.list_len(t);
            let i = t.index();
            let found = self.sel_id[i]
                .as_ref()
                .and_then(|id| (0..len).find(|&k| self.row_id(t, k).as_ref() == Some(id)));
            self.sel[i] = found.unwrap_or(self.sel[i].min(len.saturating_sub(1)));
            self.sel_id[i] = self.row_id(t, self.sel[i]);
        }
    }

    /// Rows in a tab's list.
    pub(super) fn list_len(&self, t: Tab) -> usize {
        match t {
            Tab::Overview => self.rows.findings.len(),
            Tab::Pools => self.rows.pools.len(),
            Tab::Processes if self.grouped => self.rows.groups.len(),
            Tab::Processes => self.rows.processes.len(),
            Tab::Inbound => self.rows.listeners.len(),
            Tab::Failures => self.rows.failures.len(),
            Tab::Events => self.events.len(),
        }
    }

    /// Moves the current tab's selection (or the events tab's scroll) by `delta` rows.
    pub(super) fn move_sel(&mut self, delta: isize) {
        if self.tab == Tab::Events {
            // Up (negative) goes back in time: further from the bottom.
            self.events.scroll(-delta);
            return;
        }
        let i = self.tab.index();
        let max = self.list_len(self.tab).saturating_sub(1);
        self.sel[i] = self.sel[i].saturating_add_signed(delta).min(max);
        self.sel_id[i] = self.row_id(self.tab, self.sel[i]);
        if self.tab == Tab::Overview {
            self.expanded = false;
        }
    }

    pub(super) fn sel_first(&mut self) {
        match self.tab {
            Tab::Events => self.events.scroll_to_top(),
            _ => self.move_sel(isize::MIN / 2),
        }
    }

    pub(super) fn sel_last(&mut self) {
        match self.tab {
            Tab::Events => self.events.follow(),
            _ => self.move_sel(isize::MAX / 2),
        }
    }

    fn row_id(&self, t: Tab, k: usize) -> Option<RowId> {
        let s = &self.view.snapshot;
        Some(match t {
            Tab::Overview => {
                let f = &self.view.snapshot.findings[*self.rows.findings.get(k)?];
                RowId::Finding(f.cause, f.pid, f.dst)
            }
            Tab::Pools => RowId::Pool(s.pools[*self.rows.pools.get(k)?].key()),
            Tab::Processes if self.grouped => {
                let g = &s.process_groups[*self.rows.groups.get(k)?];
                RowId::Group(g.comm, g.ppid)
            }
            Tab::Processes => RowId::Process(s.processes[*self.rows.processes.get(k)?].process.pid),
            Tab::Inbound => {
                let l = &s.listeners[*self.rows.listeners.get(k)?];
                RowId::Listener(l.netns, l.local)
            }
            Tab::Failures => {
                let f = &s.failures.groups[*self.rows.failures.get(k)?];
                RowId::Failure(f.netns, f.comm, f.call, f.errno, f.addr)
            }
            Tab::Events => return None,
        })
    }

    pub(super) fn set_filter(&mut self, text: String) {
        let t = self.tab;
        self.filters[t.index()] = text.to_lowercase();
        if t == Tab::Events {
            self.events.set_filter(&text);
        }
        self.rebuild();
    }

    pub(super) fn filter(&self) -> &str {
        &self.filters[self.tab.index()]
    }

    // Selected rows, for keys and renderers.

    pub(super) fn selected_finding(&self) -> Option<&Finding> {
        let k = *self.rows.findings.get(self.sel[Tab::Overview.index()])?;
        self.view.snapshot.findings.get(k)
    }

    pub(super) fn selected_pool(&self) -> Option<&PoolStats> {
        let k = *self.rows.pools.get(self.sel[Tab::Pools.index()])?;
        self.view.snapshot.pools.get(k)
    }

    pub(super) fn selected_process(&self) -> Option<&ProcessStats> {
        let k = *self.rows.processes.get(self.sel[Tab::Processes.index()])?;
        self.view.snapshot.processes.get(k)
    }

    pub(super) fn selected_group(&self) -> Option<&ProcessGroupStats> {
        let k = *self.rows.groups.get(self.sel[Tab::Processes.index()])?;
        self.view.snapshot.process_groups.get(k)
    }

    pub(super) fn selected_listener(&self) -> Option<&ListenerStats> {
        let k = *self.rows.listeners.get(self.sel[Tab::Inbound.index()])?;
        self.view.snapshot.listeners.get(k)
    }

    pub(super) fn selected_failure(&self) -> Option<&FailureGroup> {
        let k = *self.rows.failures.get(self.sel[Tab::Failures.index()])?;
        self.view.snapshot.failures.groups.get(k)
    }

    /// What `d` on a finding drills into: its pool when it names one (by source and
    /// destination, or by destination alone when one pool has it), else its process.
    pub(super) fn finding_target(&self, f: &Finding) -> Option<DrillTarget> {
        if let Some(key) = f.pool() {
            return Some(DrillTarget::Pool(key));
        }
        if let Some(dst) = f.dst {
            let mut pools = self
                .view
                .snapshot
                .pools
                .iter()
                .filter(|p| p.netns == f.netns && p.dst == dst);
            if let (Some(p), None) = (pools.next(), pools.next()) {
                return Some(DrillTarget::Pool(p.key()));
            }
        }
        f.pid.map(|pid| DrillTarget::Process { pid })
    }
}
