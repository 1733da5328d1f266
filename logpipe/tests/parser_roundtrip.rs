//! Writer → reader round trips (proptest): JSON, logfmt, LTSV and the
//! strftime formats; and the readers never panic on arbitrary text.

use proptest::prelude::*;
use vigil_logpipe::parser::{Parsers, logfmt, ltsv, parse_json_object};
use vigil_logpipe::strftime::TimeFormat;
use vigil_logpipe::{Fields, Value};

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        // Whole floats print as integers and read back as Int: keep a fraction.
        (-1e9f64..1e9)
            .prop_filter("fraction", |x| x.fract() != 0.0)
            .prop_map(Value::Float),
        any::<String>().prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..5)
                .prop_map(|kv| Value::Map(kv.into_iter().collect())),
        ]
    })
}

fn fields() -> impl Strategy<Value = Fields> {
    prop::collection::vec((any::<String>(), value()), 0..6).prop_map(|kv| kv.into_iter().collect())
}

proptest! {
    #[test]
    fn json_write_then_read(f in fields()) {
        let mut s = String::new();
        vigil_logpipe::json::write_fields(&mut s, &f);
        prop_assert_eq!(parse_json_object(&s).unwrap(), f);
    }

    #[test]
    fn logfmt_write_then_read(kv in prop::collection::vec(("[a-zA-Z_][a-zA-Z0-9_.-]{0,8}", "\\PC*|[ =\"\\\\\t\n\r]{0,4}"), 0..6)) {
        let f: Fields = kv.into_iter().collect();
        let mut s = String::new();
        logfmt::write(&f, &mut s);
        prop_assert_eq!(logfmt::parse_fields(&s, true).unwrap(), f);
    }

    #[test]
    fn ltsv_write_then_read(kv in prop::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,8}", "[^\t\r\n]*"), 1..6)) {
        let f: Fields = kv.into_iter().collect();
        let mut s = String::new();
        ltsv::write(&f, &mut s);
        prop_assert_eq!(ltsv::parse_fields(&s).unwrap(), f);
    }

    #[test]
    fn strftime_format_then_parse(secs in -2_000_000_000i64..8_000_000_000, nanos in 0i64..1_000_000_000) {
        let t = secs * 1_000_000_000 + nanos;
        for fmt in ["%Y-%m-%dT%H:%M:%S.%L%z", "%F %T.%L", "%a %b %e %H:%M:%S.%L %Y %Z", "%s.%L", "%Y %j %I:%M:%S.%L %p"] {
            let f = TimeFormat::new(fmt).unwrap();
            let text = f.format(t);
            prop_assert_eq!(f.parse(&text, 0), Some(t), "{} -> {}", fmt, text);
        }
        let f = TimeFormat::new("%d/%b/%Y:%H:%M:%S %z").unwrap();
        prop_assert_eq!(f.parse(&f.format(t), 0), Some(secs * 1_000_000_000));
    }

    #[test]
    fn parsers_never_panic(line in "\\PC{0,80}|[ \t\"=:{}\\[\\]\\\\a-z0-9/-]{0,60}") {
        let ps = Parsers::builtin();
        for name in ps.names() {
            let _ = ps.get(name).unwrap().parse(&line);
        }
    }
}
