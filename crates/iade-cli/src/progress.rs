//! Progress of a long run on a terminal: after half a second, one line on stderr that says what
//! has been observed, changed and failed, and which wave runs. Never shown when stderr is not a
//! terminal, nor with JSON logs.

use std::sync::Mutex;
use std::time::Duration;

use iade_driver::{Event, Sink};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a run goes before its progress shows.
const AFTER: Duration = Duration::from_millis(500);

#[derive(Default)]
struct Counts {
    observed: usize,
    changed: usize,
    failed: usize,
    wave: Option<(usize, usize)>,
}

/// Wraps the sink that prints a run's lines with a progress line kept below them.
pub struct Progress<'a> {
    inner: &'a dyn Sink,
    counts: Mutex<Counts>,
    /// Hidden until the run has gone on for [`AFTER`]; `None` off a terminal.
    bar: Option<ProgressBar>,
}

impl<'a> Progress<'a> {
    pub fn new(inner: &'a dyn Sink) -> Progress<'a> {
        let bar = std::io::IsTerminal::is_terminal(&std::io::stderr()).then(|| {
            let b = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
            b.set_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.set_message("observing");
            let shown = b.clone();
            // A run that is still going after a moment shows its progress.
            std::thread::spawn(move || {
                std::thread::sleep(AFTER);
                if !shown.is_finished() {
                    shown.set_draw_target(ProgressDrawTarget::stderr());
                    shown.enable_steady_tick(Duration::from_millis(120));
                }
            });
            b
        });
        Progress { inner, counts: Mutex::new(Counts::default()), bar }
    }

    /// Clears the progress line (the run's report follows).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn message(&self) -> String {
        let c = lock(&self.counts);
        let wave = c.wave.map_or(String::new(), |(i, n)| format!(" · wave {}/{n}", i + 1));
        format!("observed {} · changed {} · failed {}{wave}", c.observed, c.changed, c.failed)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Sink for Progress<'_> {
    fn event(&self, event: Event<'_>) {
        if let Event::Engine(e) = &event {
            let mut c = lock(&self.counts);
            match e {
                iade_engine::Event::Observed { resources, .. } => c.observed += resources,
                iade_engine::Event::Wave { index, waves, .. } => c.wave = Some((*index, *waves)),
                iade_engine::Event::Step(s) => match s.status {
                    iade_journal::StepStatus::Done => c.changed += 1,
                    iade_journal::StepStatus::Failed => c.failed += 1,
                    _ => {}
                },
            }
        }
        match &self.bar {
            Some(b) => {
                b.suspend(|| self.inner.event(event));
                b.set_message(self.message());
            }
            None => self.inner.event(event),
        }
    }
}
