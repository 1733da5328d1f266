//! PromQL: lexer, parser, values, storage seam and evaluator.

pub(crate) mod ast;
pub(crate) mod engine;
pub(crate) mod functions;
pub(crate) mod labels;
pub(crate) mod lexer;
pub(crate) mod parser;
pub(crate) mod storage;
pub(crate) mod value;
mod xxhash;

pub(crate) use lexer::parse_duration;
pub(crate) use xxhash::xxh64;
