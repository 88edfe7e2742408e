//! Hostile input, kept fixed: every case here once stalled, blew up or silently misanswered the
//! server or the CLI (issue 17). Each module owns one area; timing lives in `benches/hostile.rs`.

mod calls;
mod cli;
mod listeners;
mod matching;
mod outcomes;
mod reload;
mod streams;
