//! A generator of valid programs covering every construct, for formatter properties.

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const NAMES: &[&str] = &["a", "b", "root", "tier", "app", "x1", "long_name_for_width"];
const OPS: &[&str] =
    &["or", "and", "==", "!=", "<", "<=", ">", ">=", "in", "|", "^", "&", "+", "-", "*", "/", "%"];

fn atom(r: &mut Rng, depth: usize) -> String {
    match r.below(if depth > 3 { 5 } else { 11 }) {
        0 => r.pick(&["0", "42", "0o755", "0x1f", "0b101", "1_000"]).to_owned(),
        1 => r.pick(&["true", "false", "null"]).to_owned(),
        2 => format!("\"s{}\"", r.below(9)),
        3 => r.pick(NAMES).to_owned(),
        4 => format!("\"${{{}}}/x\\n\"", r.pick(NAMES)),
        5 => {
            let n = r.below(4);
            let xs: Vec<String> = (0..n).map(|_| expr(r, depth + 1)).collect();
            format!("[{}]", xs.join(", "))
        }
        6 => {
            let n = r.below(4);
            let xs: Vec<String> = (0..n).map(|i| format!("k{i} = {}", expr(r, depth + 1))).collect();
            format!("{{ {} }}", xs.join(", "))
        }
        7 => {
            let n = r.below(3);
            let mut xs: Vec<String> = (0..n).map(|_| expr(r, depth + 1)).collect();
            if r.below(2) == 0 {
                xs.push(format!("sep = {}", expr(r, depth + 1)));
            }
            format!("f({})", xs.join(", "))
        }
        8 => format!("{}.{}", r.pick(NAMES), r.pick(NAMES)),
        9 => format!("{}[{}]", r.pick(NAMES), expr(r, depth + 1)),
        _ => format!("({})", expr(r, depth + 1)),
    }
}

fn expr(r: &mut Rng, depth: usize) -> String {
    match r.below(if depth > 3 { 2 } else { 6 }) {
        0 | 1 => atom(r, depth),
        2 => format!("-{}", atom(r, depth)),
        3 => format!("not {}", atom(r, depth)),
        4 => format!("if {} then {} else {}", atom(r, depth), atom(r, depth), atom(r, depth)),
        _ => {
            // Operands are atoms, so no comparison is ever chained.
            format!("{} {} {}", atom(r, depth), r.pick(OPS), atom(r, depth))
        }
    }
}

fn comment(r: &mut Rng) -> &'static str {
    ["", "", "", "  # trailing note"][r.below(4)]
}

fn body(r: &mut Rng, out: &mut String, indent: usize, depth: usize) {
    let pad = "  ".repeat(indent);
    for i in 0..r.below(5) {
        if r.below(5) == 0 {
            out.push_str(&format!("{pad}# a comment {i}\n"));
        }
        match r.below(if depth > 1 { 2 } else { 4 }) {
            0 | 1 => out.push_str(&format!("{pad}k{i} = {}{}\n", expr(r, 0), comment(r))),
            2 => {
                out.push_str(&format!("{pad}for item in {} {{\n", atom(r, 2)));
                body(r, out, indent + 1, depth + 1);
                out.push_str(&format!("{pad}}}\n"));
            }
            _ => {
                out.push_str(&format!("{pad}if {} {{\n", expr(r, 2)));
                body(r, out, indent + 1, depth + 1);
                out.push_str(&format!("{pad}}} else {{\n"));
                body(r, out, indent + 1, depth + 1);
                out.push_str(&format!("{pad}}}\n"));
            }
        }
        if r.below(6) == 0 {
            out.push('\n');
        }
    }
}

pub fn program(seed: u64) -> String {
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut out = String::new();
    for i in 0..1 + r.below(6) {
        if r.below(3) == 0 {
            out.push_str("## Documented item.\n");
        }
        match r.below(8) {
            0 => out.push_str(&format!("use std.m{i}.{{file, directory as d}}\n")),
            1 => out.push_str(&format!(
                "param p{i}: \"dev\" | \"prod\" = {}{}\n",
                expr(&mut r, 0),
                comment(&mut r)
            )),
            2 => out.push_str(&format!("let l{i}: list(int)? = {}\n", expr(&mut r, 0))),
            3 => {
                out.push_str(&format!("file \"r{i}_${{x}}\" {{\n"));
                body(&mut r, &mut out, 1, 0);
                out.push_str("}\n");
            }
            4 => out.push_str(&format!(
                "rule r{i}(f: file, n: int) = {} else \"msg ${{f.path}}\"\n",
                expr(&mut r, 0)
            )),
            5 => {
                out.push_str(&format!(
                    "policy p{i} {{\n  severity = deny\n  require {} else \"no\"\n}}\n",
                    expr(&mut r, 0)
                ));
            }
            6 => {
                out.push_str(&format!("control \"C-{i}\" {{\n  title = \"t\"\n  for f in observe(file, under = \"/etc\") {{\n    require {}\n  }}\n}}\n", expr(&mut r, 0)));
            }
            _ => {
                out.push_str(&format!("kind k{i} {{\n  provider = \"local\"\n  identity path: path\n  desired mode: mode = 0o644 where mode <= 0o7777\n}}\n"));
            }
        }
        if r.below(2) == 0 {
            out.push('\n');
        }
    }
    out
}
