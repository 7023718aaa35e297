//! The state of judging one line, which every rule reads and adds to: the findings so
//! far, the commands found, the working directory as `cd` moved it, what the line wrote,
//! and where a word's path lands. The walk over the grammar (`analyze.rs`) and the rules
//! (`rules/`) add their own methods; this file holds no rule and never parses.

use super::filter::CommandFilter;
use super::paths::{Cwd, Place, Root};
use super::verdict::{Decision, Finding};
use super::words::Word;

/// A simple command that was found, for the report and for allow rules.
#[derive(Debug, Clone)]
pub(super) struct Found {
    pub argv: Vec<String>,
    pub is_static: bool,
}

/// The state of one judgement.
#[derive(Debug)]
pub(super) struct Analyzer<'f> {
    pub(super) filter: &'f CommandFilter,
    pub(super) findings: Vec<Finding>,
    pub(super) commands: Vec<Found>,
    /// The working directory as far as `cd` was followed; `None` when unknown.
    pub(super) cwd: Option<Cwd>,
    /// Functions whose body is being walked (a call to one of them is recursion).
    pub(super) functions: Vec<String>,
    /// Commands that read the network so far.
    pub(super) network_reads: usize,
    /// A network read saved to a file, and local code run (download-and-execute).
    pub(super) fetched_to_file: bool,
    pub(super) ran_local_code: bool,
    /// Output of the last simple `echo`/`printf` (code for a shell after the pipe).
    pub(super) last_echo: Option<String>,
    /// Paths this line writes or creates so far (a program or script run from one of
    /// them is code the line wrote itself).
    pub(super) created: Vec<Place>,
    /// Symbolic links this line made, and where they point: a later path through one is
    /// judged where it really leads (`ln -s /etc e && rm -rf e/`).
    pub(super) links: Vec<(Place, Place)>,
    pub(super) stopped: bool,
}

impl<'f> Analyzer<'f> {
    pub fn new(filter: &'f CommandFilter) -> Self {
        Analyzer {
            filter,
            findings: Vec::new(),
            commands: Vec::new(),
            cwd: filter.layout.workspace.clone().map(|comps| Cwd {
                root: Root::Absolute,
                comps,
            }),
            functions: Vec::new(),
            network_reads: 0,
            fetched_to_file: false,
            ran_local_code: false,
            last_echo: None,
            created: Vec::new(),
            links: Vec::new(),
            stopped: false,
        }
    }

    /// Records a finding for the command `cmd` (an index into `commands`), if any.
    /// Code that is only known when the line runs: denied when it comes from the
    /// network (download-and-run), otherwise it needs approval under `local_rule`.
    pub fn find_dynamic_code(
        &mut self,
        cmd: Option<usize>,
        from_network: bool,
        local_rule: &str,
        reason: impl Into<String>,
    ) {
        let (decision, rule) = if from_network {
            (Decision::Deny, "network.exec_remote")
        } else {
            (Decision::Approve, local_rule)
        };
        self.find(cmd, decision, rule, reason, false);
    }

    pub fn find(
        &mut self,
        cmd: Option<usize>,
        decision: Decision,
        rule: &str,
        reason: impl Into<String>,
        liftable: bool,
    ) {
        self.findings.push(Finding {
            cmd,
            decision,
            rule: rule.to_string(),
            reason: reason.into(),
            liftable,
        });
    }

    /// Records a simple command (after wrappers are peeled, each inner one too).
    pub fn record(&mut self, argv: &[Word]) -> usize {
        self.commands.push(Found {
            argv: argv.iter().map(|w| w.text.clone()).collect(),
            is_static: argv.iter().all(Word::is_static),
        });
        self.commands.len() - 1
    }
}

/// The place a word names, seen from the analyzer's working directory.
impl Analyzer<'_> {
    /// The place as written, without following the links this line made (the name a
    /// later command uses for a file the line created).
    pub fn lexical_place(&self, w: &Word) -> Place {
        self.filter
            .layout
            .place(&w.text, w.wild_at, self.cwd.as_ref())
    }

    pub fn place(&self, w: &Word) -> Place {
        let mut place = self
            .filter
            .layout
            .place(&w.text, w.wild_at, self.cwd.as_ref());
        // Newest link first; a link inside a link is followed once per link made.
        for (link, target) in self.links.iter().rev() {
            let through = link.root == place.root
                && !link.wild
                && place.comps.len() >= link.comps.len()
                && place.comps.iter().zip(&link.comps).all(|(a, b)| a == b);
            if through {
                let rest = place.comps.split_off(link.comps.len());
                place.root = target.root;
                place.comps = target.comps.clone();
                place.comps.extend(rest);
                place.wild |= target.wild;
            }
        }
        place
    }
}
