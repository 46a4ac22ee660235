//! The PromQL subset, parsed by `promql-parser` and lowered to a [`Plan`]. Anything the
//! evaluator cannot answer exactly is refused with [`Error::Unsupported`] naming the
//! construct and (the parser's AST carries no spans) the byte offset of its first
//! occurrence in the query text.

use crate::error::{Error, Result};
use crate::plan::{
    AggOp, Aggregation, ArithOp, Grouping, LabelReplace, Plan, Selection, SeriesFn, SetOp, VectorMatching,
    DEFAULT_LOOKBACK_MS,
};
use crate::window::WindowFn;
use chronolith_engine::{Labels, MatchOp, Matcher};
use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{self as p, Expr, LabelModifier};

/// Parses `query` into a plan for a range query.
pub fn parse_promql(query: &str) -> Result<Plan> {
    match parse_promql_expr(query)? {
        Parsed::Vector(plan) => Ok(plan),
        Parsed::Scalar(_) => Err(unsupported_at("a scalar-only expression", query, None)),
    }
}

/// A parsed PromQL expression: a vector expression to evaluate, or a scalar-only one
/// (`1+1`, Grafana's health check) folded to its value.
#[derive(Debug)]
pub enum Parsed {
    Vector(Plan),
    Scalar(f64),
}

/// Like [`parse_promql`], but a scalar-only expression is a value, not an error.
pub fn parse_promql_expr(query: &str) -> Result<Parsed> {
    // promql-parser recurses once per nesting level or chained operator: refuse what
    // would overflow the stack before it parses.
    crate::promql_depth::check(query)?;
    let expr = p::parse(query).map_err(Error::Parse)?;
    Ok(match (Lowering { src: query }).lower(&expr)? {
        Lowered::Vector(plan) => Parsed::Vector(plan),
        Lowered::Scalar(v) => Parsed::Scalar(v),
    })
}

enum Lowered {
    Scalar(f64),
    Vector(Plan),
}

struct Lowering<'a> {
    src: &'a str,
}

impl Lowering<'_> {
    fn unsupported(&self, construct: impl Into<String>, needle: Option<&str>) -> Error {
        unsupported_at(construct, self.src, needle)
    }

    fn lower(&self, e: &Expr) -> Result<Lowered> {
        match e {
            Expr::Paren(p) => self.lower(&p.expr),
            Expr::NumberLiteral(n) => Ok(Lowered::Scalar(n.val)),
            Expr::Unary(u) => match self.lower(&u.expr)? {
                Lowered::Scalar(v) => Ok(Lowered::Scalar(-v)),
                // Prometheus negates and drops `__name__`, as `x * -1` does.
                Lowered::Vector(input) => Ok(Lowered::Vector(Plan::Arith {
                    op: ArithOp::Mul,
                    scalar: -1.0,
                    scalar_left: false,
                    input: Box::new(input),
                })),
            },
            Expr::VectorSelector(vs) => {
                let matchers = self.selector(vs)?;
                Ok(Lowered::Vector(Plan::Select(Selection {
                    matchers,
                    func: SeriesFn::Instant { lookback_ms: DEFAULT_LOOKBACK_MS },
                })))
            }
            Expr::Call(call) => self.call(call).map(Lowered::Vector),
            Expr::Aggregate(a) => self.aggregate(a).map(Lowered::Vector),
            Expr::Binary(b) => self.binary(b),
            Expr::MatrixSelector(_) => Err(self.unsupported("a range vector as the query result", Some("["))),
            Expr::Subquery(_) => Err(self.unsupported("subquery", Some(":"))),
            Expr::StringLiteral(_) => Err(self.unsupported("string literal", Some("\""))),
            Expr::Extension(_) => Err(self.unsupported("extension expression", None)),
        }
    }

    fn selector(&self, vs: &p::VectorSelector) -> Result<Vec<Matcher>> {
        if vs.offset.is_some() {
            return Err(self.unsupported("offset modifier", Some("offset")));
        }
        if vs.at.is_some() {
            return Err(self.unsupported("@ modifier", Some("@")));
        }
        if !vs.matchers.or_matchers.is_empty() {
            return Err(self.unsupported("`or` between label matchers", Some("or")));
        }
        let mut out = Vec::with_capacity(vs.matchers.matchers.len() + 1);
        if let Some(name) = &vs.name {
            out.push(Matcher::metric(name.clone()));
        }
        for m in &vs.matchers.matchers {
            let op = match m.op {
                PMatchOp::Equal => MatchOp::Equal,
                PMatchOp::NotEqual => MatchOp::NotEqual,
                PMatchOp::Re(_) => MatchOp::RegexMatch,
                PMatchOp::NotRe(_) => MatchOp::RegexNoMatch,
            };
            out.push(Matcher::new(m.name.clone(), op, m.value.clone())?);
        }
        Ok(out)
    }

    fn call(&self, call: &p::Call) -> Result<Plan> {
        let name = call.func.name;
        let args = &call.args.args;
        if name == "label_replace" {
            return self.label_replace(args);
        }
        let func = match name {
            "min_over_time" => WindowFn::Min,
            "max_over_time" => WindowFn::Max,
            "sum_over_time" => WindowFn::Sum,
            "count_over_time" => WindowFn::Count,
            "avg_over_time" => WindowFn::Avg,
            "first_over_time" => WindowFn::First,
            "last_over_time" => WindowFn::Last,
            "stddev_over_time" => WindowFn::Stddev,
            "stdvar_over_time" => WindowFn::Stdvar,
            "changes" => WindowFn::Changes,
            "resets" => WindowFn::Resets,
            "rate" => WindowFn::Rate,
            "increase" => WindowFn::Increase,
            "delta" => WindowFn::Delta,
            "irate" => WindowFn::Irate,
            "idelta" => WindowFn::Idelta,
            "deriv" => WindowFn::Deriv,
            "quantile_over_time" => match args.first().map(|a| self.lower(a)).transpose()? {
                Some(Lowered::Scalar(phi)) => WindowFn::Quantile(phi),
                _ => return Err(self.unsupported("non-literal quantile parameter", Some(name))),
            },
            other => return Err(self.unsupported(format!("function `{other}`"), Some(other))),
        };
        let Some(range_arg) = args.last() else {
            return Err(Error::InvalidQuery(format!("{name} needs a range vector argument")));
        };
        let ms = match unparen(range_arg) {
            Expr::MatrixSelector(ms) => ms,
            Expr::Subquery(_) => return Err(self.unsupported("subquery", Some(":"))),
            _ => return Err(self.unsupported(format!("{name} over a non-selector expression"), Some(name))),
        };
        let matchers = self.selector(&ms.vs)?;
        let range_ms = i64::try_from(ms.range.as_millis())
            .map_err(|_| Error::InvalidQuery(format!("range of {name} is too long")))?;
        Ok(Plan::Select(Selection { matchers, func: SeriesFn::Window { func, range_ms } }))
    }

    fn aggregate(&self, a: &p::AggregateExpr) -> Result<Plan> {
        let name = a.op.to_string();
        if !matches!(name.as_str(), "sum" | "min" | "max" | "avg" | "count" | "topk" | "bottomk" | "quantile") {
            return Err(self.unsupported(format!("aggregation `{name}`"), Some(&name)));
        }
        let param = match &a.param {
            Some(e) => match self.lower(e)? {
                Lowered::Scalar(v) => Some(v),
                Lowered::Vector(_) => {
                    return Err(self.unsupported(format!("non-literal {name} parameter"), Some(&name)))
                }
            },
            None => None,
        };
        let op = match (name.as_str(), param) {
            ("sum", _) => AggOp::Sum,
            ("min", _) => AggOp::Min,
            ("max", _) => AggOp::Max,
            ("avg", _) => AggOp::Avg,
            ("count", _) => AggOp::Count,
            ("topk", Some(k)) => AggOp::Topk(k),
            ("bottomk", Some(k)) => AggOp::Bottomk(k),
            ("quantile", Some(q)) => AggOp::Quantile(q),
            _ => return Err(Error::InvalidQuery(format!("{name} needs a parameter"))),
        };
        let grouping = match &a.modifier {
            Some(LabelModifier::Include(l)) => Grouping::By(l.labels.clone()),
            Some(LabelModifier::Exclude(l)) => Grouping::Without(l.labels.clone()),
            None => Grouping::By(Vec::new()),
        };
        let input = match self.lower(&a.expr)? {
            Lowered::Vector(plan) => plan,
            Lowered::Scalar(_) => return Err(self.unsupported(format!("{name} over a scalar"), Some(&name))),
        };
        Ok(Plan::Aggregate { agg: Aggregation { op, grouping }, input: Box::new(input) })
    }

    fn label_replace(&self, args: &[Box<Expr>]) -> Result<Plan> {
        let [input, dst, replacement, src, regex] = args else {
            return Err(Error::InvalidQuery(format!("label_replace takes 5 arguments, got {}", args.len())));
        };
        let string = |e: &Expr, what: &str| match unparen(e) {
            Expr::StringLiteral(s) => Ok(s.val.clone()),
            _ => Err(Error::InvalidQuery(format!("label_replace: {what} must be a string literal"))),
        };
        let dst = string(dst, "destination label")?;
        if Labels::new([(dst.as_str(), "x")]).is_err() {
            return Err(Error::InvalidQuery(format!("label_replace: invalid destination label name {dst:?}")));
        }
        let regex_src = string(regex, "regex")?;
        // Anchored like Prometheus's; the size limit keeps a hostile pattern cheap.
        let regex = regex::RegexBuilder::new(&format!("^(?s:{regex_src})$"))
            .size_limit(1 << 20)
            .build()
            .map_err(|e| Error::InvalidQuery(format!("label_replace: invalid regex {regex_src:?}: {e}")))?;
        let replace = LabelReplace {
            dst,
            replacement: string(replacement, "replacement")?,
            src: string(src, "source label")?,
            regex,
        };
        match self.lower(input)? {
            Lowered::Vector(plan) => Ok(Plan::LabelReplace { replace, input: Box::new(plan) }),
            Lowered::Scalar(_) => Err(Error::InvalidQuery("label_replace needs an instant vector".into())),
        }
    }

    fn matching(&self, b: &p::BinaryExpr) -> Result<VectorMatching> {
        let Some(modifier) = &b.modifier else { return Ok(VectorMatching::Ignoring(Vec::new())) };
        match modifier.card {
            p::VectorMatchCardinality::ManyToOne(_) => {
                return Err(self.unsupported("group_left/group_right", Some("group_left")))
            }
            p::VectorMatchCardinality::OneToMany(_) => {
                return Err(self.unsupported("group_left/group_right", Some("group_right")))
            }
            _ => {}
        }
        Ok(match &modifier.matching {
            Some(LabelModifier::Include(l)) => VectorMatching::On(l.labels.clone()),
            Some(LabelModifier::Exclude(l)) => VectorMatching::Ignoring(l.labels.clone()),
            None => VectorMatching::Ignoring(Vec::new()),
        })
    }

    fn binary(&self, b: &p::BinaryExpr) -> Result<Lowered> {
        let sym = b.op.to_string();
        let set_op = match sym.as_str() {
            "and" => Some(SetOp::And),
            "or" => Some(SetOp::Or),
            "unless" => Some(SetOp::Unless),
            _ => None,
        };
        if let Some(op) = set_op {
            let matching = self.matching(b)?;
            return match (self.lower(&b.lhs)?, self.lower(&b.rhs)?) {
                (Lowered::Vector(l), Lowered::Vector(r)) => {
                    Ok(Lowered::Vector(Plan::Set { op, matching, lhs: Box::new(l), rhs: Box::new(r) }))
                }
                _ => Err(Error::InvalidQuery(format!("set operator `{sym}` needs instant vectors on both sides"))),
            };
        }
        let op = match sym.as_str() {
            "+" => ArithOp::Add,
            "-" => ArithOp::Sub,
            "*" => ArithOp::Mul,
            "/" => ArithOp::Div,
            "%" => ArithOp::Mod,
            "^" => ArithOp::Pow,
            other => return Err(self.unsupported(format!("binary operator `{other}`"), Some(other))),
        };
        if b.modifier.as_ref().is_some_and(|m| m.return_bool) {
            return Err(self.unsupported("bool modifier", Some("bool")));
        }
        match (self.lower(&b.lhs)?, self.lower(&b.rhs)?) {
            (Lowered::Scalar(l), Lowered::Scalar(r)) => Ok(Lowered::Scalar(op.apply(l, r))),
            (Lowered::Vector(v), Lowered::Scalar(s)) => {
                Ok(Lowered::Vector(Plan::Arith { op, scalar: s, scalar_left: false, input: Box::new(v) }))
            }
            (Lowered::Scalar(s), Lowered::Vector(v)) => {
                Ok(Lowered::Vector(Plan::Arith { op, scalar: s, scalar_left: true, input: Box::new(v) }))
            }
            (Lowered::Vector(l), Lowered::Vector(r)) => Ok(Lowered::Vector(Plan::VectorArith {
                op,
                matching: self.matching(b)?,
                lhs: Box::new(l),
                rhs: Box::new(r),
            })),
        }
    }
}

fn unparen(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unparen(&p.expr),
        other => other,
    }
}

fn unsupported_at(construct: impl Into<String>, src: &str, needle: Option<&str>) -> Error {
    let position = match needle {
        Some(n) => locate(src, n),
        None => Some(0),
    };
    Error::Unsupported { construct: construct.into(), position }
}

/// Byte offset of the first occurrence of `needle` outside quoted strings; a word needle
/// must stand alone (not be part of a longer identifier).
fn locate(src: &str, needle: &str) -> Option<usize> {
    let is_word = needle.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in src.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        let opens_quote = matches!(c, '"' | '\'' | '`');
        if !src[i..].starts_with(needle) {
            if opens_quote {
                quote = Some(c);
            }
            continue;
        }
        if is_word {
            let before = src[..i].chars().next_back().is_some_and(ident);
            let after = src[i + needle.len()..].chars().next().is_some_and(ident);
            if before || after {
                continue;
            }
        }
        return Some(i);
    }
    None
}
