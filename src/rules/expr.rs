//! Rule expressions: parsed once by `evalexpr`, compiled into a tiny stack program over `f64`
//! slots, evaluated on the hot path without allocating.
//!
//! Supported language (everything else is rejected when the rule is compiled):
//! - numbers (`0.8`, `2`, `1e-3`) and `true` / `false`;
//! - variables: any evalexpr identifier, dots included (`behavior.wall_rearing`), resolved to a
//!   slot index at compile time;
//! - arithmetic `+ - * / % ^` and unary `-` on numbers;
//! - comparisons `== != < <= > >=` (numbers with numbers, or conditions with conditions for
//!   `==` / `!=`), giving a condition;
//! - logic `&& || !` on conditions; parentheses;
//! - functions `min(a, b, ...)`, `max(a, b, ...)` (two or more numbers) and `abs(x)` /
//!   `math::abs(x)`.
//!
//! Semantics, where they differ from evaluating the text with evalexpr itself:
//! - all arithmetic is `f64`: integer literals are floats, so `1 / 2` is `0.5` and `x == 1` is
//!   true when `x` is `1.0` (evalexpr divides integers and never equals an int with a float);
//! - a missing value is `NaN`. Every comparison with a `NaN` operand is **false**, `!=`
//!   included, and `min` / `max` / arithmetic propagate `NaN`, so a rule never fires on a
//!   signal it has not seen yet. Note that `!(x > 0.5)` is therefore true while `x` is missing:
//!   write `x <= 0.5` to mean "x is known and at most 0.5";
//! - `^` groups as evalexpr parses it (left to right: `2 ^ 3 ^ 2` is `(2 ^ 3) ^ 2`), and binds
//!   tighter than unary minus (`-x ^ 2` is `-(x ^ 2)`).
//! - `&&` / `||` evaluate both sides (there are no side effects to skip).

use evalexpr::{Node, Operator, Value};
use thiserror::Error;

/// Deepest value stack a program may need; checked at compile time.
pub const MAX_STACK: usize = 32;

/// Deepest nesting of the parsed tree accepted (keeps compilation's recursion bounded).
const MAX_NESTING: usize = 128;

/// Longest expression text accepted, in bytes (checked before parsing).
pub const MAX_TEXT: usize = 1024;

/// Deepest nesting of parentheses accepted (checked before parsing, so evalexpr's recursive
/// parser never sees a text nested deeper than this).
pub const MAX_PARENS: usize = 32;

/// Refuses a text too long or too deeply parenthesised to hand to the parser: a rule nested
/// 100 000 deep would overflow the stack inside evalexpr.
pub fn check_text(text: &str) -> Result<(), ExprError> {
    if text.len() > MAX_TEXT {
        return Err(ExprError::TooLong { len: text.len() });
    }
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut unary_run = 0usize;
    for c in text.chars() {
        match c {
            '(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        // Runs of prefix operators (`!!!!x`, `- - -x`) nest like parentheses.
        match c {
            '!' | '-' => unary_run += 1,
            c if c.is_whitespace() => {}
            _ => unary_run = 0,
        }
        deepest = deepest.max(depth + unary_run);
    }
    if deepest > MAX_PARENS {
        return Err(ExprError::NestedTooDeep { depth: deepest });
    }
    Ok(())
}

/// Why an expression could not be compiled.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ExprError {
    /// evalexpr could not parse the text.
    #[error("cannot parse: {0}")]
    Parse(String),
    /// The text (or a pair of parentheses) holds nothing.
    #[error("empty expression")]
    Empty,
    /// A variable the rig does not provide.
    #[error("unknown variable `{name}`{}", suggestion_text(.suggestion))]
    UnknownVariable {
        /// The name as written.
        name: String,
        /// The closest known variable, if one is close.
        suggestion: Option<String>,
    },
    /// A function outside the supported set.
    #[error("unknown function `{name}` (supported: min, max, abs, math::abs)")]
    UnknownFunction {
        /// The name as written.
        name: String,
    },
    /// A supported function called with the wrong number of arguments.
    #[error("`{function}` takes {expected}, got {got}")]
    Arity {
        /// The function.
        function: String,
        /// What it takes, in words.
        expected: &'static str,
        /// How many arguments it was given.
        got: usize,
    },
    /// A construct evalexpr parses but rules do not support.
    #[error("{0} is not supported in rule expressions")]
    Unsupported(String),
    /// An operator applied to the wrong kind of operand.
    #[error("`{op}` needs {expected}, but got {found}")]
    Type {
        /// The operator or function.
        op: String,
        /// What it needs, in words.
        expected: &'static str,
        /// What it got, in words.
        found: &'static str,
    },
    /// The whole expression is a number where a condition is needed.
    #[error("must be a condition (e.g. `x > 0.5`), but it computes a number")]
    NotCondition,
    /// The text is longer than [`MAX_TEXT`].
    #[error("is {len} bytes long; a rule expression is at most {MAX_TEXT}")]
    TooLong {
        /// Bytes in the text.
        len: usize,
    },
    /// Parentheses (or prefix operators) nested deeper than [`MAX_PARENS`].
    #[error("nests {depth} levels deep; at most {MAX_PARENS} are allowed")]
    NestedTooDeep {
        /// The nesting reached.
        depth: usize,
    },
    /// Too deeply nested for the fixed evaluation stack.
    #[error("too deeply nested (needs {needed} stack slots, at most {MAX_STACK})")]
    TooDeep {
        /// Stack slots the expression would need (or nesting depth reached).
        needed: usize,
    },
}

fn suggestion_text(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}

/// The closest of `known` to `given` (Damerau–Levenshtein, within half the length), if any.
pub fn nearest<'a>(given: &str, known: impl IntoIterator<Item = &'a str>) -> Option<String> {
    known
        .into_iter()
        .map(|candidate| (strsim::damerau_levenshtein(given, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= (candidate.len().max(given.len()) / 2).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate.to_string())
}

/// What an expression computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExprType {
    /// A number.
    Number,
    /// A condition (true is `1.0`, false is `0.0`).
    Condition,
}

impl ExprType {
    fn words(self) -> &'static str {
        match self {
            ExprType::Number => "a number",
            ExprType::Condition => "a condition",
        }
    }
}

/// One instruction of a compiled program.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Const(f64),
    Load(u32),
    Neg,
    Not,
    Abs,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Pow,
    Min,
    Max,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

/// A compiled expression: postfix instructions over a fixed-size `f64` stack.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    ops: Box<[Op]>,
    ty: ExprType,
    depth: usize,
}

impl Program {
    /// Parses `text` with evalexpr and compiles it. `resolve` maps a variable name to its slot;
    /// `known` lists the variable names offered as suggestions when a name is unknown.
    pub fn compile(
        text: &str,
        resolve: &dyn Fn(&str) -> Option<usize>,
        known: &[&str],
    ) -> Result<Program, ExprError> {
        check_text(text)?;
        let tree =
            evalexpr::build_operator_tree(text).map_err(|e| ExprError::Parse(e.to_string()))?;
        let mut compiler = Compiler {
            resolve,
            known,
            ops: Vec::new(),
            depth: 0,
            max_depth: 0,
        };
        let ty = compiler.node(&tree, 0)?;
        Ok(Program {
            ops: compiler.ops.into_boxed_slice(),
            ty,
            depth: compiler.max_depth,
        })
    }

    /// Like [`Program::compile`], but the result must be a condition.
    pub fn compile_condition(
        text: &str,
        resolve: &dyn Fn(&str) -> Option<usize>,
        known: &[&str],
    ) -> Result<Program, ExprError> {
        let program = Self::compile(text, resolve, known)?;
        match program.ty {
            ExprType::Condition => Ok(program),
            ExprType::Number => Err(ExprError::NotCondition),
        }
    }

    /// What the expression computes.
    pub fn ty(&self) -> ExprType {
        self.ty
    }

    /// Value-stack slots evaluation needs (at most [`MAX_STACK`]).
    pub fn stack_depth(&self) -> usize {
        self.depth
    }

    /// The slots the expression reads, in the order the variables appear in the text
    /// (repeats included).
    pub fn slots_read(&self) -> impl Iterator<Item = usize> + '_ {
        self.ops.iter().filter_map(|op| match op {
            Op::Load(slot) => Some(*slot as usize),
            _ => None,
        })
    }

    /// Evaluates against `slots`; a slot beyond `slots.len()` reads as `NaN` (missing).
    /// Conditions give `1.0` / `0.0`. Never allocates.
    pub fn eval(&self, slots: &[f64]) -> f64 {
        let mut stack = [0.0f64; MAX_STACK];
        let mut top = 0usize; // number of values on the stack
        for op in self.ops.iter() {
            match *op {
                Op::Const(v) => {
                    stack[top] = v;
                    top += 1;
                }
                Op::Load(slot) => {
                    stack[top] = slots.get(slot as usize).copied().unwrap_or(f64::NAN);
                    top += 1;
                }
                Op::Neg => stack[top - 1] = -stack[top - 1],
                Op::Not => stack[top - 1] = truth(stack[top - 1] == 0.0),
                Op::Abs => stack[top - 1] = stack[top - 1].abs(),
                binary => {
                    top -= 1;
                    let b = stack[top];
                    let a = &mut stack[top - 1];
                    *a = apply(binary, *a, b);
                }
            }
        }
        stack[0]
    }

    /// Evaluates a condition: true when the result is non-zero and not `NaN`.
    pub fn eval_bool(&self, slots: &[f64]) -> bool {
        let v = self.eval(slots);
        v != 0.0 && !v.is_nan()
    }
}

fn truth(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// A binary instruction. Comparisons with a `NaN` operand are false; `min` / `max` propagate it.
#[inline(always)]
fn apply(op: Op, a: f64, b: f64) -> f64 {
    match op {
        Op::Add => a + b,
        Op::Sub => a - b,
        Op::Mul => a * b,
        Op::Div => a / b,
        Op::Rem => a % b,
        Op::Pow => a.powf(b),
        Op::Min if a.is_nan() || b.is_nan() => f64::NAN,
        Op::Min => a.min(b),
        Op::Max if a.is_nan() || b.is_nan() => f64::NAN,
        Op::Max => a.max(b),
        Op::Eq => truth(a == b),
        Op::Ne => truth(a != b && !a.is_nan() && !b.is_nan()),
        Op::Lt => truth(a < b),
        Op::Le => truth(a <= b),
        Op::Gt => truth(a > b),
        Op::Ge => truth(a >= b),
        Op::And => truth(a != 0.0 && b != 0.0),
        Op::Or => truth(a != 0.0 || b != 0.0),
        Op::Const(_) | Op::Load(_) | Op::Neg | Op::Not | Op::Abs => unreachable!("not binary"),
    }
}

struct Compiler<'a> {
    resolve: &'a dyn Fn(&str) -> Option<usize>,
    known: &'a [&'a str],
    ops: Vec<Op>,
    depth: usize,
    max_depth: usize,
}

impl Compiler<'_> {
    /// Emits `op`, which pops `pops` values and pushes one.
    fn emit(&mut self, op: Op, pops: usize) -> Result<(), ExprError> {
        self.depth = self.depth + 1 - pops;
        self.max_depth = self.max_depth.max(self.depth);
        if self.depth > MAX_STACK {
            return Err(ExprError::TooDeep { needed: self.depth });
        }
        self.ops.push(op);
        Ok(())
    }

    fn node(&mut self, node: &Node, nesting: usize) -> Result<ExprType, ExprError> {
        if nesting > MAX_NESTING {
            return Err(ExprError::TooDeep { needed: nesting });
        }
        let children = node.children();
        match node.operator() {
            Operator::RootNode => match children {
                [] => Err(ExprError::Empty),
                [only] => self.node(only, nesting + 1),
                _ => Err(ExprError::Unsupported("a tuple".into())),
            },
            Operator::Const { value } => {
                let (v, ty) = match value {
                    Value::Float(f) => (*f, ExprType::Number),
                    Value::Int(i) => (*i as f64, ExprType::Number),
                    Value::Boolean(b) => (truth(*b), ExprType::Condition),
                    Value::String(_) => return Err(ExprError::Unsupported("a string".into())),
                    Value::Tuple(_) => return Err(ExprError::Unsupported("a tuple".into())),
                    Value::Empty => return Err(ExprError::Empty),
                };
                self.emit(Op::Const(v), 0)?;
                Ok(ty)
            }
            Operator::VariableIdentifierRead { identifier } => {
                let Some(slot) = (self.resolve)(identifier) else {
                    return Err(ExprError::UnknownVariable {
                        name: identifier.clone(),
                        suggestion: nearest(identifier, self.known.iter().copied()),
                    });
                };
                let slot = u32::try_from(slot).expect("slot index fits u32");
                self.emit(Op::Load(slot), 0)?;
                Ok(ExprType::Number)
            }
            Operator::FunctionIdentifier { identifier } => {
                self.function(identifier, children, nesting)
            }
            Operator::Neg => self.unary(Op::Neg, "-", ExprType::Number, children, nesting),
            Operator::Not => self.unary(Op::Not, "!", ExprType::Condition, children, nesting),
            op @ (Operator::Add
            | Operator::Sub
            | Operator::Mul
            | Operator::Div
            | Operator::Mod
            | Operator::Exp) => {
                let (code, symbol) = match op {
                    Operator::Add => (Op::Add, "+"),
                    Operator::Sub => (Op::Sub, "-"),
                    Operator::Mul => (Op::Mul, "*"),
                    Operator::Div => (Op::Div, "/"),
                    Operator::Mod => (Op::Rem, "%"),
                    _ => (Op::Pow, "^"),
                };
                self.binary(code, symbol, Some(ExprType::Number), children, nesting)?;
                Ok(ExprType::Number)
            }
            op @ (Operator::Lt | Operator::Leq | Operator::Gt | Operator::Geq) => {
                let (code, symbol) = match op {
                    Operator::Lt => (Op::Lt, "<"),
                    Operator::Leq => (Op::Le, "<="),
                    Operator::Gt => (Op::Gt, ">"),
                    _ => (Op::Ge, ">="),
                };
                self.binary(code, symbol, Some(ExprType::Number), children, nesting)?;
                Ok(ExprType::Condition)
            }
            Operator::Eq => {
                self.binary(Op::Eq, "==", None, children, nesting)?;
                Ok(ExprType::Condition)
            }
            Operator::Neq => {
                self.binary(Op::Ne, "!=", None, children, nesting)?;
                Ok(ExprType::Condition)
            }
            Operator::And => {
                self.binary(Op::And, "&&", Some(ExprType::Condition), children, nesting)?;
                Ok(ExprType::Condition)
            }
            Operator::Or => {
                self.binary(Op::Or, "||", Some(ExprType::Condition), children, nesting)?;
                Ok(ExprType::Condition)
            }
            Operator::Assign
            | Operator::AddAssign
            | Operator::SubAssign
            | Operator::MulAssign
            | Operator::DivAssign
            | Operator::ModAssign
            | Operator::ExpAssign
            | Operator::AndAssign
            | Operator::OrAssign
            | Operator::VariableIdentifierWrite { .. } => {
                Err(ExprError::Unsupported("assignment".into()))
            }
            Operator::Tuple => Err(ExprError::Unsupported("a tuple".into())),
            Operator::Chain => Err(ExprError::Unsupported("chaining with `;`".into())),
        }
    }

    fn expect(
        &mut self,
        node: &Node,
        op: &str,
        want: ExprType,
        nesting: usize,
    ) -> Result<(), ExprError> {
        let got = self.node(node, nesting + 1)?;
        if got == want {
            Ok(())
        } else {
            Err(ExprError::Type {
                op: op.into(),
                expected: match want {
                    ExprType::Number => "numbers",
                    ExprType::Condition => "conditions",
                },
                found: got.words(),
            })
        }
    }

    fn unary(
        &mut self,
        code: Op,
        symbol: &str,
        ty: ExprType,
        children: &[Node],
        nesting: usize,
    ) -> Result<ExprType, ExprError> {
        let [operand] = children else {
            return Err(ExprError::Parse(format!("`{symbol}` needs one operand")));
        };
        self.expect(operand, symbol, ty, nesting)?;
        self.emit(code, 1)?;
        Ok(ty)
    }

    /// Compiles both operands (both of type `want`, or of the same type when `None`) then `code`.
    fn binary(
        &mut self,
        code: Op,
        symbol: &str,
        want: Option<ExprType>,
        children: &[Node],
        nesting: usize,
    ) -> Result<(), ExprError> {
        let [a, b] = children else {
            return Err(ExprError::Parse(format!("`{symbol}` needs two operands")));
        };
        match want {
            Some(ty) => {
                self.expect(a, symbol, ty, nesting)?;
                self.expect(b, symbol, ty, nesting)?;
            }
            None => {
                let ty = self.node(a, nesting + 1)?;
                self.expect(b, symbol, ty, nesting)?;
            }
        }
        self.emit(code, 2)
    }

    fn function(
        &mut self,
        name: &str,
        children: &[Node],
        nesting: usize,
    ) -> Result<ExprType, ExprError> {
        let (code, min_args, max_args, expected) = match name {
            "min" => (Op::Min, 2, usize::MAX, "two or more numbers"),
            "max" => (Op::Max, 2, usize::MAX, "two or more numbers"),
            "abs" | "math::abs" => (Op::Abs, 1, 1, "one number"),
            _ => {
                return Err(ExprError::UnknownFunction {
                    name: name.to_string(),
                });
            }
        };
        let args = arguments(children);
        if args.len() < min_args || args.len() > max_args {
            return Err(ExprError::Arity {
                function: name.to_string(),
                expected,
                got: args.len(),
            });
        }
        for (i, arg) in args.iter().enumerate() {
            self.expect(arg, name, ExprType::Number, nesting)?;
            match code {
                Op::Abs => self.emit(Op::Abs, 1)?,
                _ if i > 0 => self.emit(code, 2)?,
                _ => {}
            }
        }
        Ok(ExprType::Number)
    }
}

/// A function's arguments: its child with parentheses stripped, split if it is a tuple.
fn arguments(children: &[Node]) -> &[Node] {
    let mut args = children;
    while let [only] = args {
        match only.operator() {
            Operator::RootNode => args = only.children(),
            Operator::Tuple => return only.children(),
            _ => break,
        }
    }
    args
}
