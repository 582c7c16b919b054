//! Standard output of the commands that print reports.
//!
//! `println!` panics when standard output is a pipe whose reader has gone
//! (`ferrokms audit | head`): Rust ignores SIGPIPE, so the write fails with
//! EPIPE instead of ending the process. [`outln!`] and [`out!`] write the same
//! text, and on that error end the process quietly, with no message, and
//! status 141: what a shell reports for `grep` or `cat` killed by SIGPIPE
//! (128 + 13), so `set -o pipefail` scripts see what they see with those
//! tools. Not 0: `policy simulate`, `policy lint` and `policy evaluate`
//! answer with their status, and a reader that stopped early must not turn
//! "denied" into "allowed". Any other write error (a full disk behind `>`)
//! is reported and ends the process with status 2.

use std::io::Write;

/// The status after the reader of standard output has gone: 128 + SIGPIPE.
pub const BROKEN_PIPE: i32 = 141;

/// Writes `args` to standard output, or ends the process (see the module).
pub fn write(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let result = stdout.write_fmt(args);
    drop(stdout);
    if let Err(e) = result {
        failed(&e);
    }
}

/// Ends the process after a failed write to standard output.
pub fn failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(BROKEN_PIPE);
    }
    eprintln!("ferrokms: cannot write to standard output: {e}");
    std::process::exit(2);
}

/// `println!` that ends the process quietly when the reader has gone.
macro_rules! outln {
    () => {
        $crate::out::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that ends the process quietly when the reader has gone.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*))
    };
}
