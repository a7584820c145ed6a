//! Expression compiler: agreement with evalexpr on random expressions, and error messages.

use evalexpr::{ContextWithMutableVariables, HashMapContext, Value};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::expr::{ExprError, ExprType, MAX_STACK, Program};

const VARS: [&str; 4] = [
    "behavior.wall_rearing",
    "behavior.grooming",
    "miniscope.roi3",
    "pose.nose_x",
];

fn resolve(name: &str) -> Option<usize> {
    VARS.iter().position(|v| *v == name)
}

fn compile(text: &str) -> Result<Program, ExprError> {
    Program::compile(text, &resolve, &VARS)
}

/// Random typed expressions, rendered twice: as rules write them, and as an evalexpr text with
/// the rules' missing-value semantics spelled out (`!=` and `min`/`max` with a `NaN` operand).
struct Gen {
    rng: Xoshiro256PlusPlus,
}

/// (rule text, evalexpr reference text)
type Pair = (String, String);

const LITERALS: [&str; 7] = ["0.5", "2.0", "1.5", "3.25", "0.125", "10.0", "1e-1"];
const EXPONENTS: [&str; 4] = ["0.5", "2.0", "3.0", "1.5"];

impl Gen {
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.rng.random_range(0..items.len())]
    }

    fn same(text: String) -> Pair {
        (text.clone(), text)
    }

    fn nan_guard(args: &[&Pair]) -> String {
        args.iter()
            .map(|(_, r)| format!("math::is_nan({r})"))
            .collect::<Vec<_>>()
            .join(" || ")
    }

    fn number(&mut self, depth: u32) -> Pair {
        if depth == 0 || self.rng.random_bool(0.25) {
            return if self.rng.random_bool(0.6) {
                Self::same(self.pick(&VARS).to_string())
            } else {
                Self::same(self.pick(&LITERALS).to_string())
            };
        }
        match self.rng.random_range(0..9) {
            0..=3 => {
                let op = self.pick(&["+", "-", "*", "/", "%"]);
                let (a, b) = (self.number(depth - 1), self.number(depth - 1));
                (
                    format!("({} {op} {})", a.0, b.0),
                    format!("({} {op} {})", a.1, b.1),
                )
            }
            4 => {
                let a = self.number(depth - 1);
                let e = self.pick(&EXPONENTS);
                (format!("({} ^ {e})", a.0), format!("({} ^ {e})", a.1))
            }
            5 => {
                let a = self.number(depth - 1);
                (format!("(-{})", a.0), format!("(-{})", a.1))
            }
            6 => {
                let a = self.number(depth - 1);
                let name = self.pick(&["abs", "math::abs"]);
                (format!("{name}({})", a.0), format!("math::abs({})", a.1))
            }
            _ => {
                let name = self.pick(&["min", "max"]);
                let n = self.rng.random_range(2..=3);
                let args: Vec<Pair> = (0..n).map(|_| self.number(depth - 1)).collect();
                let refs: Vec<&Pair> = args.iter().collect();
                let ours = args.iter().map(|a| a.0.as_str()).collect::<Vec<_>>();
                let theirs = args.iter().map(|a| a.1.as_str()).collect::<Vec<_>>();
                let sum = theirs.join(" + ");
                (
                    format!("{name}({})", ours.join(", ")),
                    // A NaN argument makes the sum NaN: the rules' result.
                    format!(
                        "if({}, {sum}, {name}({}))",
                        Self::nan_guard(&refs),
                        theirs.join(", ")
                    ),
                )
            }
        }
    }

    fn condition(&mut self, depth: u32) -> Pair {
        if depth == 0 || self.rng.random_bool(0.15) {
            return Self::same(self.pick(&["true", "false"]).to_string());
        }
        match self.rng.random_range(0..8) {
            0..=3 => {
                let op = self.pick(&["<", "<=", ">", ">=", "==", "!="]);
                let (a, b) = (self.number(depth - 1), self.number(depth - 1));
                let reference = if op == "!=" {
                    format!(
                        "if({}, false, {} != {})",
                        Self::nan_guard(&[&a, &b]),
                        a.1,
                        b.1
                    )
                } else {
                    format!("({} {op} {})", a.1, b.1)
                };
                (format!("({} {op} {})", a.0, b.0), reference)
            }
            4 | 5 => {
                let op = self.pick(&["&&", "||"]);
                let (a, b) = (self.condition(depth - 1), self.condition(depth - 1));
                (
                    format!("({} {op} {})", a.0, b.0),
                    format!("({} {op} {})", a.1, b.1),
                )
            }
            6 => {
                let op = self.pick(&["==", "!="]);
                let (a, b) = (self.condition(depth - 1), self.condition(depth - 1));
                (
                    format!("({} {op} {})", a.0, b.0),
                    format!("({} {op} {})", a.1, b.1),
                )
            }
            _ => {
                let a = self.condition(depth - 1);
                (format!("!{}", a.0), format!("!{}", a.1))
            }
        }
    }
}

fn reference(text: &str, values: &[f64]) -> f64 {
    let mut context = HashMapContext::new();
    for (name, v) in VARS.iter().zip(values) {
        context
            .set_value(name.to_string(), Value::Float(*v))
            .unwrap();
    }
    match evalexpr::eval_with_context(text, &context) {
        Ok(Value::Float(f)) => f,
        Ok(Value::Boolean(b)) => f64::from(u8::from(b)),
        other => panic!("evalexpr on {text}: {other:?}"),
    }
}

fn same_value(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

#[test]
fn compiled_programs_agree_with_evalexpr_on_random_expressions() {
    let mut generator = Gen {
        rng: Xoshiro256PlusPlus::seed_from_u64(0x5eed_2026),
    };
    let mut values_rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let (mut conditions, mut nan_inputs) = (0, 0);
    for case in 0..3000 {
        let depth = 1 + case % 5;
        let (ours, theirs) = if case % 2 == 0 {
            generator.condition(depth)
        } else {
            generator.number(depth)
        };
        let program = compile(&ours).unwrap_or_else(|e| panic!("{ours}: {e}"));
        assert!(program.stack_depth() <= MAX_STACK);
        if program.ty() == ExprType::Condition {
            conditions += 1;
        }
        for _ in 0..4 {
            let values: Vec<f64> = (0..VARS.len())
                .map(|_| {
                    if values_rng.random_bool(0.1) {
                        f64::NAN
                    } else {
                        values_rng.random_range(-5.0..5.0)
                    }
                })
                .collect();
            nan_inputs += usize::from(values.iter().any(|v| v.is_nan()));
            let got = program.eval(&values);
            let want = reference(&theirs, &values);
            assert!(
                same_value(got, want),
                "{ours}\n  reference {theirs}\n  values {values:?}: got {got}, evalexpr {want}"
            );
        }
    }
    assert!(
        conditions > 1000 && nan_inputs > 1000,
        "{conditions} {nan_inputs}"
    );
}

#[test]
fn precedence_follows_evalexpr_parse() {
    let values = [0.9, 0.25, 2.5, -1.5];
    for text in [
        "behavior.wall_rearing > 0.8 && miniscope.roi3 > 2.0 || behavior.grooming > 0.5",
        "-pose.nose_x ^ 2.0 + miniscope.roi3 * 2.0 - 1.5 / 0.5",
        "2.0 ^ 3.0 ^ 2.0",
        "miniscope.roi3 % 2.0 * 3.0",
        "!(behavior.wall_rearing < 0.5) && !false",
        "min(behavior.grooming, pose.nose_x) < max(0.1, miniscope.roi3) == true",
        "math::abs pose.nose_x",
        "1.5 - -pose.nose_x",
    ] {
        let got = compile(text).unwrap().eval(&values);
        let want = reference(text, &values);
        assert!(same_value(got, want), "{text}: got {got}, evalexpr {want}");
    }
}

#[test]
fn integer_literals_are_floats() {
    let p = compile("1 / 2 + behavior.grooming").unwrap();
    assert_eq!(p.eval(&[0.0, 1.0, 0.0, 0.0]), 1.5);
    let p = compile("behavior.grooming == 1").unwrap();
    assert!(p.eval_bool(&[0.0, 1.0, 0.0, 0.0]));
}

#[test]
fn missing_values_make_comparisons_false() {
    let nan = [f64::NAN; 4];
    for text in [
        "behavior.wall_rearing > 0.5",
        "behavior.wall_rearing <= 0.5",
        "behavior.wall_rearing == behavior.wall_rearing",
        "behavior.wall_rearing != 0.5",
        "min(behavior.wall_rearing, 0.1) < 1.0",
        "max(behavior.wall_rearing, 2.0) > 1.0",
        "abs(behavior.wall_rearing) >= 0.0",
    ] {
        assert!(!compile(text).unwrap().eval_bool(&nan), "{text}");
    }
    // Documented consequence: negating a false comparison is true.
    assert!(
        compile("!(behavior.wall_rearing > 0.5)")
            .unwrap()
            .eval_bool(&nan)
    );
    // A slot beyond the array is missing too.
    assert!(!compile("pose.nose_x < 1.0").unwrap().eval_bool(&[0.0]));
}

#[test]
fn slots_read_in_text_order() {
    let p = compile("max(pose.nose_x, miniscope.roi3) > behavior.wall_rearing").unwrap();
    assert_eq!(p.slots_read().collect::<Vec<_>>(), vec![3, 2, 0]);
}

fn error(text: &str) -> (ExprError, String) {
    let e = compile(text).expect_err(text);
    let shown = e.to_string();
    (e, shown)
}

#[test]
fn unknown_variable_names_it_and_suggests_the_nearest() {
    let (e, shown) = error("behavior.wall_rear > 0.8");
    assert_eq!(
        e,
        ExprError::UnknownVariable {
            name: "behavior.wall_rear".into(),
            suggestion: Some("behavior.wall_rearing".into()),
        }
    );
    assert_eq!(
        shown,
        "unknown variable `behavior.wall_rear` (did you mean `behavior.wall_rearing`?)"
    );
    let (_, shown) = error("completely_unrelated_name > 1");
    assert_eq!(shown, "unknown variable `completely_unrelated_name`");
}

#[test]
fn unsupported_constructs_are_rejected_with_reasons() {
    let cases: [(&str, &str); 12] = [
        ("pose.nose_x = 3", "assignment is not supported"),
        ("pose.nose_x += 3", "assignment is not supported"),
        ("\"wall\" == \"wall\"", "a string is not supported"),
        ("(pose.nose_x, 1)", "a tuple is not supported"),
        (
            "pose.nose_x > 1; true",
            "chaining with `;` is not supported",
        ),
        (
            "sqrt(pose.nose_x) > 1",
            "unknown function `sqrt` (supported: min, max, abs",
        ),
        (
            "min(pose.nose_x) > 1",
            "`min` takes two or more numbers, got 1",
        ),
        ("abs(pose.nose_x, 1) > 1", "`abs` takes one number, got 2"),
        (
            "pose.nose_x && true",
            "`&&` needs conditions, but got a number",
        ),
        (
            "(pose.nose_x > 1) + 1 > 0",
            "`+` needs numbers, but got a condition",
        ),
        ("!pose.nose_x", "`!` needs conditions, but got a number"),
        ("true == 1", "`==` needs conditions, but got a number"),
    ];
    for (text, want) in cases {
        let (_, shown) = error(text);
        assert!(shown.contains(want), "{text}: {shown}");
    }
    assert_eq!(error("").0, ExprError::Empty);
    assert!(matches!(error("pose.nose_x >").0, ExprError::Parse(_)));
    assert!(matches!(error("(pose.nose_x > 1").0, ExprError::Parse(_)));
}

#[test]
fn condition_required_where_asked() {
    let e = Program::compile_condition("pose.nose_x * 2", &resolve, &VARS).unwrap_err();
    assert_eq!(e, ExprError::NotCondition);
    assert!(e.to_string().contains("must be a condition"));
    assert!(Program::compile_condition("pose.nose_x * 2 > 1", &resolve, &VARS).is_ok());
}

#[test]
fn stack_depth_is_checked_at_compile_time() {
    // Right-nested sums need one stack slot per level.
    let nested = |levels: usize| {
        let mut text = "pose.nose_x".to_string();
        for _ in 1..levels {
            text = format!("pose.nose_x + ({text})");
        }
        text
    };
    let p = compile(&nested(MAX_STACK)).unwrap();
    assert_eq!(p.stack_depth(), MAX_STACK);
    assert_eq!(p.eval(&[0.0, 0.0, 0.0, 1.0]), MAX_STACK as f64);
    assert_eq!(
        compile(&nested(MAX_STACK + 1)).unwrap_err(),
        ExprError::TooDeep {
            needed: MAX_STACK + 1
        }
    );
}

#[test]
fn texts_too_long_or_too_deep_are_refused_before_parsing() {
    // On a small stack, where a parser that recursed per level would overflow.
    let verdicts = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(|| {
            let deep = |open: &str, close: &str, n: usize| {
                format!(
                    "{}behavior.grooming > 0.5{}",
                    open.repeat(n),
                    close.repeat(n)
                )
            };
            [
                compile(&deep("(", ")", 100_000)),
                compile(&deep("!", "", 100_000)),
                compile(&deep("!(", ")", 300)),
                compile(&deep("(", ")", 33)),
                compile(&deep("- ", "", 40).replace("> 0.5", "")),
                compile(&deep("(", ")", 30)),
            ]
        })
        .unwrap()
        .join()
        .expect("no stack overflow");
    assert!(matches!(verdicts[0], Err(ExprError::TooLong { len }) if len > 1024));
    assert!(matches!(verdicts[1], Err(ExprError::TooLong { .. })));
    assert!(
        matches!(verdicts[2], Err(ExprError::NestedTooDeep { depth: 300 })),
        "{:?}",
        verdicts[2]
    );
    assert!(matches!(
        verdicts[3],
        Err(ExprError::NestedTooDeep { depth: 33 })
    ));
    assert!(
        matches!(verdicts[4], Err(ExprError::NestedTooDeep { depth: 40 })),
        "{:?}",
        verdicts[4]
    );
    assert!(verdicts[5].is_ok(), "30 levels are fine: {:?}", verdicts[5]);
    assert!(super::expr::check_text("a - b - c - d > 1 && !(x > 2)").is_ok());
}
