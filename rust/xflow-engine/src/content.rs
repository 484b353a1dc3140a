//! The per-delivery content check (docs/formats.md). It is fed the decoded bytes in the same pass
//! that verifies the sha256, so a delivery is read once and never held in memory.
//!
//! A validator bug must never lose a delivery: a panic inside it is caught, and the delivery is
//! then handled as the setting says for a file that could not be shown to be good — delivered
//! with a warning (`Warn`) or quarantined (`Quarantine`) — never dropped (crash point
//! `content-check`, tests/crash.rs).

use crate::config::{System, ValidationMode};
use crate::crash::panic_point;
use std::panic::{AssertUnwindSafe, catch_unwind};
use xflow_formats::{Kind, Report, Validator};

/// Findings shown in a quarantine reason; every one is in the warnings of a `Warn` run.
const REASON_FINDINGS: usize = 5;

pub(crate) struct ContentCheck {
    system: System,
    mode: ValidationMode,
    validator: Option<Validator>,
    failure: Option<String>,
}

/// What the check says about one delivery.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Judgement {
    Clean,
    /// Deliver, and report each line as a warning.
    Warn(Vec<String>),
    /// Keep it out of the import folder, for this reason.
    Refuse(String),
}

impl ContentCheck {
    /// `None` when the system's check is off.
    pub(crate) fn new(system: System, mode: ValidationMode) -> Option<ContentCheck> {
        if mode == ValidationMode::Off {
            return None;
        }
        let kind = match system {
            System::Prisme => Kind::Prisme,
            System::SdLoen => Kind::SdLoen,
        };
        Some(ContentCheck {
            system,
            mode,
            validator: Some(Validator::new(kind)),
            failure: None,
        })
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        let Some(validator) = self.validator.as_mut() else {
            return;
        };
        let result = catch_unwind(AssertUnwindSafe(|| {
            panic_point!("content-check");
            validator.update(bytes);
        }));
        if let Err(panic) = result {
            self.fail(panic);
        }
    }

    pub(crate) fn finish(mut self) -> Judgement {
        let report = match self.validator.take() {
            Some(v) => match catch_unwind(AssertUnwindSafe(|| v.finish())) {
                Ok(report) => Some(report),
                Err(panic) => {
                    self.fail(panic);
                    None
                }
            },
            None => None,
        };
        let system = self.system.wire_name();
        match (report, self.failure) {
            (_, Some(failure)) => match self.mode {
                ValidationMode::Quarantine => Judgement::Refuse(format!(
                    "the {system} content check failed ({failure}), so the file could not be \
                     shown to be good; it is kept for review"
                )),
                _ => Judgement::Warn(vec![format!(
                    "the {system} content check failed ({failure}); the file was delivered \
                     unchecked"
                )]),
            },
            (Some(report), None) if report.is_clean() => Judgement::Clean,
            (Some(report), None) => match self.mode {
                ValidationMode::Quarantine => Judgement::Refuse(summary(&report)),
                _ => {
                    let mut lines: Vec<String> =
                        report.findings.iter().map(ToString::to_string).collect();
                    if report.more > 0 {
                        lines.push(format!("{} more findings not shown", report.more));
                    }
                    Judgement::Warn(lines)
                }
            },
            (None, None) => Judgement::Clean,
        }
    }

    fn fail(&mut self, panic: Box<dyn std::any::Any + Send>) {
        self.validator = None;
        let text = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_owned());
        self.failure = Some(format!("internal error: {text}"));
    }
}

fn summary(report: &Report) -> String {
    let total = report.findings.len() as u64 + report.more;
    let shown: Vec<String> = report
        .findings
        .iter()
        .take(REASON_FINDINGS)
        .map(ToString::to_string)
        .collect();
    let rest = total.saturating_sub(shown.len() as u64);
    let more = if rest > 0 {
        format!("; and {rest} more")
    } else {
        String::new()
    };
    format!(
        "{total} finding{}: {}{more}",
        if total == 1 { "" } else { "s" },
        shown.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(system: System, mode: ValidationMode, bytes: &[u8]) -> Judgement {
        let mut c = ContentCheck::new(system, mode).expect("not Off");
        c.update(bytes);
        c.finish()
    }

    #[test]
    fn off_checks_nothing_warn_lists_findings_quarantine_refuses() {
        assert!(ContentCheck::new(System::Prisme, ValidationMode::Off).is_none());
        assert_eq!(
            check(System::SdLoen, ValidationMode::Warn, b"S\xf8ren\r\n"),
            Judgement::Clean
        );
        let Judgement::Warn(lines) = check(System::Prisme, ValidationMode::Warn, b"x\r\ny\r\n")
        else {
            panic!("expected warnings");
        };
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("line 1, Snitfladetype:"), "{lines:?}");
        let Judgement::Refuse(reason) = check(System::SdLoen, ValidationMode::Quarantine, b"")
        else {
            panic!("expected a refusal");
        };
        assert_eq!(reason, "1 finding: file: is empty");
    }

    #[test]
    fn a_long_list_is_cut_in_the_reason() {
        let Judgement::Refuse(reason) = check(
            System::Prisme,
            ValidationMode::Quarantine,
            &b"x\r\n".repeat(80),
        ) else {
            panic!("expected a refusal");
        };
        assert!(reason.starts_with("80 findings: line 1,"), "{reason}");
        assert!(reason.ends_with("; and 75 more"), "{reason}");
    }
}
