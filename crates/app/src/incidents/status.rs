//! The incident status machine, in one place: the capture and analysis statuses, the overall and
//! handoff statuses derived from them, the labels every client shows (badges and filter options
//! come from the same `ALL` lists and `label` functions), and `transition`, the one function that
//! decides whether a change is allowed and for whom.
//!
//! Capture goes `draft → in_progress → completed`; it completes only through submission, which
//! checks the completion checklist. Analysis goes `not_started → in_progress → completed`, only
//! after capture completed and only for holders of `perform_analysis`. Nothing goes backwards;
//! asking for the current status again changes nothing and is allowed.
//!
//! The overall status has the three values the web app's badges, filters and count cards know:
//! `capture_pending` until capture completes, `analysis_pending` until analysis completes, then
//! `completed`. That a submitted capture awaits its analyst shows in the handoff status
//! (`ready_for_analysis`).

use functions::{ErrorCode, FunctionError};
use serde::{Deserialize, Serialize};
use values::Typed;

use crate::identity::{Permission, Role};

/// Declares a status enum with its stored value and its display label, so the three can never
/// drift apart.
macro_rules! statuses {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $value:literal, $label:literal;)+ }) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Typed,
        )]
        pub enum $name {
            $(#[serde(rename = $value)] $variant,)+
        }

        impl $name {
            /// Every value, in workflow order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and wire value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $value,)+
                }
            }

            /// What people read: badges, filter options and exports all use this.
            pub fn label(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)+
                }
            }

            pub fn parse(value: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|s| s.as_str() == value)
            }

            /// The values, for error messages.
            pub fn names() -> String {
                Self::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            }
        }
    };
}

statuses!(
    /// How far the frontline worker's capture has come.
    CaptureStatus {
        Draft = "draft", "Draft";
        InProgress = "in_progress", "In Progress";
        Completed = "completed", "Completed";
    }
);

statuses!(
    /// How far the team lead's analysis has come.
    AnalysisStatus {
        NotStarted = "not_started", "Not Started";
        InProgress = "in_progress", "In Progress";
        Completed = "completed", "Completed";
    }
);

statuses!(
    /// The status lists filter by, derived from capture and analysis (never set on its own).
    OverallStatus {
        CapturePending = "capture_pending", "Capture Pending";
        AnalysisPending = "analysis_pending", "Analysis Pending";
        Completed = "completed", "Completed";
    }
);

statuses!(
    /// Where the capture-to-analysis handoff stands, also derived.
    HandoffStatus {
        Draft = "draft", "Draft";
        ReadyForAnalysis = "ready_for_analysis", "Ready for Analysis";
        InAnalysis = "in_analysis", "In Analysis";
        AnalysisComplete = "analysis_complete", "Analysis Complete";
    }
);

/// The overall status earlier versions stored for a submitted capture whose analysis had not
/// started. Nothing derives it any more; `super::upgrade` rewrites stored rows holding it to
/// `analysis_pending` (and their counts) before the server serves.
pub const LEGACY_READY_FOR_ANALYSIS: &str = "ready_for_analysis";

/// The two statuses that are stored as facts; everything else follows from them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct State {
    pub capture: CaptureStatus,
    pub analysis: AnalysisStatus,
}

impl State {
    /// Every new incident starts here.
    pub const INITIAL: State = State {
        capture: CaptureStatus::Draft,
        analysis: AnalysisStatus::NotStarted,
    };

    /// Analysis cannot have begun while capture is unfinished.
    pub fn is_valid(self) -> bool {
        self.capture == CaptureStatus::Completed || self.analysis == AnalysisStatus::NotStarted
    }

    pub fn overall(self) -> OverallStatus {
        match (self.capture, self.analysis) {
            (CaptureStatus::Completed, AnalysisStatus::Completed) => OverallStatus::Completed,
            (CaptureStatus::Completed, _) => OverallStatus::AnalysisPending,
            _ => OverallStatus::CapturePending,
        }
    }

    /// Finer than the overall status once capture is done: whether the analyst has started.
    pub fn handoff(self) -> HandoffStatus {
        match (self.capture, self.analysis) {
            (CaptureStatus::Completed, AnalysisStatus::NotStarted) => {
                HandoffStatus::ReadyForAnalysis
            }
            (CaptureStatus::Completed, AnalysisStatus::InProgress) => HandoffStatus::InAnalysis,
            (CaptureStatus::Completed, AnalysisStatus::Completed) => {
                HandoffStatus::AnalysisComplete
            }
            _ => HandoffStatus::Draft,
        }
    }

    /// Once submitted, the capture (details and narrative) is read-only.
    pub fn capture_locked(self) -> bool {
        self.capture == CaptureStatus::Completed
    }
}

/// A change someone asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Capture(CaptureStatus),
    Analysis(AnalysisStatus),
}

/// How the change arrives: a plain status update, the submission that checked the checklist, or a
/// company administrator reopening a completed analysis (the analysis module checks who).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    StatusUpdate,
    Submission,
    Reopen,
}

/// Who asks: their role, and whether they created the incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Actor {
    pub role: Role,
    pub is_creator: bool,
}

/// Why a change was refused. Each kind has a stable code and field, and the reference's wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The actor lacks the permission the change needs.
    MissingPermission(Permission),
    /// Captures are edited by the person who created them, nobody else.
    NotCreator,
    InvalidCapture {
        from: CaptureStatus,
        to: CaptureStatus,
    },
    /// `in_progress → completed` only happens by submitting for analysis.
    SubmissionRequired,
    InvalidAnalysis {
        from: AnalysisStatus,
        to: AnalysisStatus,
    },
    CaptureNotCompleted,
}

impl Refusal {
    pub fn code(self) -> ErrorCode {
        match self {
            Refusal::MissingPermission(_) | Refusal::NotCreator => ErrorCode::Forbidden,
            _ => ErrorCode::Conflict,
        }
    }

    pub fn field(self) -> &'static str {
        match self {
            Refusal::MissingPermission(Permission::PerformAnalysis)
            | Refusal::InvalidAnalysis { .. }
            | Refusal::CaptureNotCompleted => "analysis_status",
            _ => "capture_status",
        }
    }

    pub fn message(self) -> String {
        match self {
            Refusal::MissingPermission(_) => "Insufficient permissions".into(),
            Refusal::NotCreator => "Access denied: can only update your own incidents".into(),
            Refusal::InvalidCapture { from, to } => format!(
                "Invalid capture status transition from {} to {}",
                from.as_str(),
                to.as_str()
            ),
            Refusal::SubmissionRequired => {
                "Invalid capture status transition from in_progress to completed: capture is \
                 completed by submitting the incident for analysis, which checks the completion \
                 checklist"
                    .into()
            }
            Refusal::InvalidAnalysis { from, to } => format!(
                "Invalid analysis status transition from {} to {}",
                from.as_str(),
                to.as_str()
            ),
            Refusal::CaptureNotCompleted => {
                "Cannot start analysis until capture phase is completed".into()
            }
        }
    }
}

impl From<Refusal> for FunctionError {
    fn from(refusal: Refusal) -> FunctionError {
        FunctionError::field(refusal.code(), refusal.field(), refusal.message())
    }
}

/// The state after `request`, or why it is refused.
pub fn transition(
    state: State,
    request: Request,
    actor: Actor,
    route: Route,
) -> Result<State, Refusal> {
    match request {
        Request::Capture(to) => {
            if !actor.role.has(Permission::EditOwnIncidentCapture) {
                return Err(Refusal::MissingPermission(
                    Permission::EditOwnIncidentCapture,
                ));
            }
            if !actor.is_creator {
                return Err(Refusal::NotCreator);
            }
            let from = state.capture;
            let allowed = match (from, to) {
                _ if from == to => true,
                (CaptureStatus::Draft, CaptureStatus::InProgress) => true,
                (CaptureStatus::InProgress, CaptureStatus::Completed) => {
                    if route != Route::Submission {
                        return Err(Refusal::SubmissionRequired);
                    }
                    true
                }
                _ => false,
            };
            if !allowed {
                return Err(Refusal::InvalidCapture { from, to });
            }
            Ok(State {
                capture: to,
                ..state
            })
        }
        Request::Analysis(to) => {
            if !actor.role.has(Permission::PerformAnalysis) {
                return Err(Refusal::MissingPermission(Permission::PerformAnalysis));
            }
            let from = state.analysis;
            // Submission hands the capture over; it never moves the analysis itself. Only a
            // reopening goes back, and only from completed to in progress.
            let allowed = match route {
                Route::Submission => false,
                Route::Reopen => {
                    (from, to) == (AnalysisStatus::Completed, AnalysisStatus::InProgress)
                }
                Route::StatusUpdate => match (from, to) {
                    _ if from == to => true,
                    (AnalysisStatus::NotStarted, AnalysisStatus::InProgress) => {
                        if state.capture != CaptureStatus::Completed {
                            return Err(Refusal::CaptureNotCompleted);
                        }
                        true
                    }
                    (AnalysisStatus::InProgress, AnalysisStatus::Completed) => true,
                    _ => false,
                },
            };
            if !allowed {
                return Err(Refusal::InvalidAnalysis { from, to });
            }
            Ok(State {
                analysis: to,
                ..state
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{HashSet, VecDeque};

    fn states() -> Vec<State> {
        let mut all = Vec::new();
        for &capture in CaptureStatus::ALL {
            for &analysis in AnalysisStatus::ALL {
                all.push(State { capture, analysis });
            }
        }
        all
    }

    /// The states an incident can be in (analysis never runs ahead of capture; imports check it).
    fn valid_states() -> Vec<State> {
        states().into_iter().filter(|s| s.is_valid()).collect()
    }

    fn requests() -> Vec<Request> {
        let captures = CaptureStatus::ALL.iter().map(|&s| Request::Capture(s));
        let analyses = AnalysisStatus::ALL.iter().map(|&s| Request::Analysis(s));
        captures.chain(analyses).collect()
    }

    /// The rules, written as the list of edges the workflow allows rather than as the match in
    /// `transition`, so the two can disagree.
    fn spec(state: State, request: Request, actor: Actor, route: Route) -> Option<State> {
        match request {
            Request::Capture(to) => {
                let edge = matches!(
                    (state.capture, to, route),
                    (CaptureStatus::Draft, CaptureStatus::InProgress, _)
                        | (
                            CaptureStatus::InProgress,
                            CaptureStatus::Completed,
                            Route::Submission
                        )
                );
                let may = actor.is_creator && actor.role >= Role::FrontlineWorker;
                (may && (edge || state.capture == to)).then_some(State {
                    capture: to,
                    ..state
                })
            }
            Request::Analysis(to) => {
                let edge = matches!(
                    (state.analysis, to),
                    (AnalysisStatus::NotStarted, AnalysisStatus::InProgress)
                        | (AnalysisStatus::InProgress, AnalysisStatus::Completed)
                );
                let capture_done = state.capture == CaptureStatus::Completed
                    || to != AnalysisStatus::InProgress
                    || state.analysis == to;
                let may = actor.role >= Role::TeamLead && route == Route::StatusUpdate;
                (may && capture_done && (edge || state.analysis == to)).then_some(State {
                    analysis: to,
                    ..state
                })
            }
        }
    }

    fn rank_capture(s: CaptureStatus) -> usize {
        CaptureStatus::ALL.iter().position(|&c| c == s).unwrap()
    }

    fn rank_analysis(s: AnalysisStatus) -> usize {
        AnalysisStatus::ALL.iter().position(|&a| a == s).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Every pair of states (the current one and the one asked for), every role, creator or
        /// not, either route (the space is small: 2000 cases cover it many times over): the machine answers as the edge list says, never leaves a valid
        /// state, never goes backwards or skips a step, and refuses with a stable code.
        #[test]
        fn transitions_follow_the_edge_list(
            state in proptest::sample::select(valid_states()),
            request in proptest::sample::select(requests()),
            role in proptest::sample::select(Role::ALL.to_vec()),
            is_creator in any::<bool>(),
            submission in any::<bool>(),
        ) {
            let route = if submission { Route::Submission } else { Route::StatusUpdate };
            let actor = Actor { role, is_creator };
            let got = transition(state, request, actor, route);
            prop_assert_eq!(got.ok(), spec(state, request, actor, route));
            match got {
                Ok(next) => {
                    prop_assert!(next.is_valid());
                    let (c0, c1) = (rank_capture(state.capture), rank_capture(next.capture));
                    let (a0, a1) = (rank_analysis(state.analysis), rank_analysis(next.analysis));
                    prop_assert!(c1 == c0 || c1 == c0 + 1);
                    prop_assert!(a1 == a0 || a1 == a0 + 1);
                    if next.capture != state.capture {
                        prop_assert!(is_creator && role.has(Permission::EditOwnIncidentCapture));
                    }
                    if next.capture == CaptureStatus::Completed && state.capture != next.capture {
                        prop_assert_eq!(route, Route::Submission);
                    }
                    if next.analysis != state.analysis {
                        prop_assert!(role.has(Permission::PerformAnalysis));
                        prop_assert_eq!(state.capture, CaptureStatus::Completed);
                    }
                }
                Err(refusal) => {
                    let error = FunctionError::from(refusal);
                    let code = error.code().unwrap();
                    prop_assert!(matches!(code, ErrorCode::Forbidden | ErrorCode::Conflict));
                    if role == Role::FrontlineWorker {
                        if let Request::Analysis(_) = request {
                            prop_assert_eq!(code, ErrorCode::Forbidden);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn from_a_new_incident_exactly_the_five_valid_states_are_reachable() {
        let lead = Actor {
            role: Role::TeamLead,
            is_creator: true,
        };
        let mut seen = HashSet::from([State::INITIAL]);
        let mut queue = VecDeque::from([State::INITIAL]);
        while let Some(state) = queue.pop_front() {
            for request in requests() {
                for route in [Route::StatusUpdate, Route::Submission] {
                    if let Ok(next) = transition(state, request, lead, route) {
                        assert!(next.is_valid(), "{state:?} -> {next:?}");
                        if seen.insert(next) {
                            queue.push_back(next);
                        }
                    }
                }
            }
        }
        let valid: HashSet<State> = valid_states().into_iter().collect();
        assert_eq!(seen, valid);
        assert_eq!(seen.len(), 5);
    }

    #[test]
    fn the_overall_status_follows_capture_and_analysis() {
        use AnalysisStatus as A;
        use CaptureStatus as C;
        use OverallStatus as O;
        let cases = [
            (
                C::Draft,
                A::NotStarted,
                O::CapturePending,
                HandoffStatus::Draft,
            ),
            (
                C::InProgress,
                A::NotStarted,
                O::CapturePending,
                HandoffStatus::Draft,
            ),
            (
                C::Completed,
                A::NotStarted,
                O::AnalysisPending,
                HandoffStatus::ReadyForAnalysis,
            ),
            (
                C::Completed,
                A::InProgress,
                O::AnalysisPending,
                HandoffStatus::InAnalysis,
            ),
            (
                C::Completed,
                A::Completed,
                O::Completed,
                HandoffStatus::AnalysisComplete,
            ),
        ];
        for (capture, analysis, overall, handoff) in cases {
            let state = State { capture, analysis };
            assert_eq!(state.overall(), overall);
            assert_eq!(state.handoff(), handoff);
        }
    }

    #[test]
    fn refusals_use_the_reference_wording() {
        let worker = Actor {
            role: Role::FrontlineWorker,
            is_creator: true,
        };
        let jump = transition(
            State::INITIAL,
            Request::Capture(CaptureStatus::Completed),
            worker,
            Route::StatusUpdate,
        );
        assert_eq!(
            jump.unwrap_err().message(),
            "Invalid capture status transition from draft to completed"
        );
        let lead = Actor {
            role: Role::TeamLead,
            is_creator: false,
        };
        let early = transition(
            State::INITIAL,
            Request::Analysis(AnalysisStatus::InProgress),
            lead,
            Route::StatusUpdate,
        );
        assert_eq!(early, Err(Refusal::CaptureNotCompleted));
        let labels: Vec<&str> = OverallStatus::ALL.iter().map(|s| s.label()).collect();
        assert_eq!(labels, ["Capture Pending", "Analysis Pending", "Completed"]);
    }
}
