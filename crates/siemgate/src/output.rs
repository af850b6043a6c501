//! What the commands print. Results go to standard output, one line per
//! fact; errors go to standard error as one `error:` line.

use std::fmt;
use std::io::{self, Write};

/// Writes one line to standard output.
pub fn line(args: fmt::Arguments<'_>) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_fmt(args)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// `say!("stored {n}")` prints a line to standard output and yields its `io::Result`.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
pub(crate) use say;

/// Prints an error and its causes as one line, `error: what: why: root cause`.
pub fn error(e: &anyhow::Error) {
    let _ = writeln!(io::stderr().lock(), "error: {e:#}");
}

/// True when the error is standard output's reader having gone away.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|cause| cause.downcast_ref::<io::Error>())
        .any(|io| io.kind() == io::ErrorKind::BrokenPipe)
}

/// Writes `text` to standard error as it is, for a progress line that
/// rewrites itself with `\r`.
pub fn stderr_text(text: &str) {
    let mut err = io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// Writes one line to standard error.
pub fn stderr_line(text: &str) {
    let _ = writeln!(io::stderr().lock(), "{text}");
}
