//! The walk: a shell line parsed by `brush-parser`, every simple command that could run
//! found (pipelines, lists, subshells, functions, loops and conditionals, `$(...)` and
//! backticks, process substitutions, here-documents, redirections, assignments), each
//! word resolved as far as static analysis allows (quotes and escapes removed, `~` and
//! `$HOME` known, anything else marked dynamic), wrappers peeled off recursively, and
//! every finding recorded with the command it belongs to. The rules themselves live in
//! `rules/`; this file only finds what would run and with which words.

use brush_parser::ast;
use brush_parser::word::{Parameter, ParameterExpr, WordPiece, WordPieceWithSource};

use super::paths::Cwd;
use super::state::Analyzer;
use super::verdict::{Decision, MAX_COMMANDS, MAX_DEPTH};
use super::words::{Stdin, Word, excerpt};

impl Analyzer<'_> {
    /// Whether to go on: stops (with a deny) past the depth or command budget.
    fn enter(&mut self, depth: usize) -> bool {
        if self.stopped {
            return false;
        }
        if depth > MAX_DEPTH {
            self.stopped = true;
            self.find(
                None,
                Decision::Deny,
                "input.too_deep",
                format!(
                    "commands are nested more than {MAX_DEPTH} levels deep (substitutions, wrappers or shells inside each other); no ordinary command needs that"
                ),
                false,
            );
            return false;
        }
        if self.commands.len() >= MAX_COMMANDS {
            self.stopped = true;
            self.find(
                None,
                Decision::Deny,
                "input.too_complex",
                format!("the line holds more than {MAX_COMMANDS} commands"),
                false,
            );
            return false;
        }
        true
    }

    // ---------------------------------------------------------------------------------
    // Programs and the grammar.

    /// Parses and walks shell code at `depth`; returns whether any of it reads the
    /// network.
    pub fn program(&mut self, code: &str, depth: usize) -> bool {
        let before = self.network_reads;
        if !self.enter(depth) {
            return false;
        }
        if let Some(problem) = super::syntax::precheck(code) {
            self.find(None, problem.0, problem.1, problem.2, false);
            return false;
        }
        let start_cwd = self.cwd.clone();
        match super::syntax::parse(code) {
            Ok(program) => {
                for list in &program.complete_commands {
                    self.compound_list(list, depth);
                }
                if let Some(resolved) = echo_resolved(code) {
                    self.deny_if_resolved(&resolved, start_cwd, depth);
                }
            }
            Err(err) => {
                self.find(
                    None,
                    Decision::Approve,
                    "input.unparseable",
                    format!(
                        "the shell code {} could not be parsed ({err}); a person must read it",
                        excerpt(code)
                    ),
                    false,
                );
                super::fallback::scan(self, code, depth);
            }
        }
        self.network_reads > before
    }

    /// `"$(echo rm)" -rf /`: the program and words are unknown to the walk (the line
    /// needs approval for that), but a substitution of a plain `echo`/`printf` has only one
    /// possible output. The line with those outputs put in place is judged too, and only
    /// its denials are kept, so this can make a verdict stricter and never more lenient.
    fn deny_if_resolved(&mut self, resolved: &str, cwd: Option<Cwd>, depth: usize) {
        let mut nested = Analyzer::new(self.filter);
        nested.cwd = cwd;
        nested.program(resolved, depth + 1);
        for finding in nested.findings {
            if finding.decision == Decision::Deny {
                self.find(
                    None,
                    Decision::Deny,
                    &finding.rule,
                    format!(
                        "with its echo/printf substitutions replaced by their output: {}",
                        finding.reason
                    ),
                    false,
                );
            }
        }
    }

    fn compound_list(&mut self, list: &ast::CompoundList, depth: usize) {
        for ast::CompoundListItem(and_or, _) in &list.0 {
            self.pipeline(&and_or.first, depth);
            for next in &and_or.additional {
                match next {
                    ast::AndOr::And(p) | ast::AndOr::Or(p) => self.pipeline(p, depth),
                }
            }
        }
    }

    fn pipeline(&mut self, pipeline: &ast::Pipeline, depth: usize) {
        let mut upstream_network = false;
        let mut upstream_echo: Option<String> = None;
        for (index, command) in pipeline.seq.iter().enumerate() {
            let stdin = if index == 0 {
                Stdin::default()
            } else {
                Stdin {
                    text: upstream_echo.clone(),
                    unknown: upstream_echo.is_none(),
                    network: upstream_network,
                }
            };
            let before = self.network_reads;
            self.last_echo = None;
            self.command(command, depth, stdin);
            upstream_network |= self.network_reads > before;
            upstream_echo = self.last_echo.take();
        }
    }

    fn command(&mut self, command: &ast::Command, depth: usize, stdin: Stdin) {
        if self.stopped {
            return;
        }
        match command {
            ast::Command::Simple(simple) => self.simple(simple, depth, stdin),
            ast::Command::Compound(compound, redirects) => {
                let mut stdin = stdin;
                if let Some(list) = redirects {
                    for redirect in &list.0 {
                        self.redirect(redirect, None, depth, &mut stdin);
                    }
                }
                self.compound(compound, depth);
            }
            ast::Command::Function(def) => {
                let name = def.fname.value.clone();
                self.functions.push(name);
                let ast::FunctionBody(body, redirects) = &def.body;
                if let Some(list) = redirects {
                    let mut stdin = Stdin::default();
                    for redirect in &list.0 {
                        self.redirect(redirect, None, depth, &mut stdin);
                    }
                }
                self.compound(body, depth);
                self.functions.pop();
            }
            ast::Command::ExtendedTest(test) => self.extended_test(&test.expr, depth),
        }
    }

    fn extended_test(&mut self, expr: &ast::ExtendedTestExpr, depth: usize) {
        match expr {
            ast::ExtendedTestExpr::And(a, b) | ast::ExtendedTestExpr::Or(a, b) => {
                self.extended_test(a, depth);
                self.extended_test(b, depth);
            }
            ast::ExtendedTestExpr::Not(a) | ast::ExtendedTestExpr::Parenthesized(a) => {
                self.extended_test(a, depth)
            }
            ast::ExtendedTestExpr::UnaryTest(_, w) => {
                self.word(&w.value, depth);
            }
            ast::ExtendedTestExpr::BinaryTest(_, a, b) => {
                self.word(&a.value, depth);
                self.word(&b.value, depth);
            }
        }
    }

    fn compound(&mut self, compound: &ast::CompoundCommand, depth: usize) {
        match compound {
            ast::CompoundCommand::Arithmetic(a) => self.arithmetic(&a.expr.value, depth),
            ast::CompoundCommand::ArithmeticForClause(f) => {
                for expr in [&f.initializer, &f.condition, &f.updater]
                    .into_iter()
                    .flatten()
                {
                    self.arithmetic(&expr.value, depth);
                }
                self.compound_list(&f.body.list, depth);
            }
            ast::CompoundCommand::BraceGroup(g) => self.compound_list(&g.list, depth),
            ast::CompoundCommand::Subshell(s) => {
                let saved = self.cwd.clone();
                self.compound_list(&s.list, depth);
                self.cwd = saved;
            }
            ast::CompoundCommand::ForClause(f) => {
                for value in f.values.iter().flatten() {
                    self.word(&value.value, depth);
                }
                self.compound_list(&f.body.list, depth);
            }
            ast::CompoundCommand::CaseClause(c) => {
                self.word(&c.value.value, depth);
                for item in &c.cases {
                    for pattern in &item.patterns {
                        self.word(&pattern.value, depth);
                    }
                    if let Some(list) = &item.cmd {
                        self.compound_list(list, depth);
                    }
                }
            }
            ast::CompoundCommand::IfClause(c) => {
                self.compound_list(&c.condition, depth);
                self.compound_list(&c.then, depth);
                for other in c.elses.iter().flatten() {
                    if let Some(condition) = &other.condition {
                        self.compound_list(condition, depth);
                    }
                    self.compound_list(&other.body, depth);
                }
            }
            ast::CompoundCommand::WhileClause(w) | ast::CompoundCommand::UntilClause(w) => {
                self.compound_list(&w.0, depth);
                self.compound_list(&w.1.list, depth);
            }
        }
    }

    /// Arithmetic text may hold command substitutions, which run. And what the parser
    /// calls arithmetic may be commands: brush reads `( ( rm -rf ~ ) )` (two separate
    /// parentheses) as `(( ... ))`, where bash runs nested subshells, and bash runs
    /// `$((cmd) )` as a command substitution when it is not arithmetic. So the text is
    /// also judged as shell code: what the rules find in it counts, and text that is not
    /// arithmetic at all is a construct the walk does not model, which needs approval.
    fn arithmetic(&mut self, text: &str, depth: usize) {
        if text.contains("$(") || text.contains('`') || text.contains("${") {
            self.word(&format!("\"{}\"", text.replace('"', "")), depth);
        }
        if text.trim().is_empty() || !self.enter(depth) {
            return;
        }
        let is_arithmetic = brush_parser::arithmetic::parse(text).is_ok();
        let mut nested = Analyzer::new(self.filter);
        nested.cwd = self.cwd.clone();
        nested.functions = self.functions.clone();
        // Read as commands, the text is a subshell of this one: the same depth (each
        // reading drops two parentheses, and the precheck bounds the nesting).
        nested.program(text, depth);
        for finding in nested.findings {
            // `(( i++ ))` is not a program `i++` the allowlist should ask about.
            let only_unfamiliar = matches!(
                finding.rule.as_str(),
                "policy.not_allowlisted" | "input.unparseable" | "obfuscation.dynamic_program"
            );
            if finding.decision == Decision::Allow || (is_arithmetic && only_unfamiliar) {
                continue;
            }
            self.find(
                None,
                finding.decision,
                &finding.rule,
                format!("read as commands, {}", finding.reason),
                false,
            );
        }
        if !is_arithmetic {
            self.find(
                None,
                Decision::Approve,
                "input.unmodelled",
                format!(
                    "{} is not arithmetic: the shell runs it as commands (nested subshells)",
                    excerpt(text)
                ),
                false,
            );
        }
    }

    fn simple(&mut self, simple: &ast::SimpleCommand, depth: usize, mut stdin: Stdin) {
        let mut argv: Vec<Word> = Vec::new();
        let mut redirects: Vec<&ast::IoRedirect> = Vec::new();
        let mut assignments: Vec<(String, Word)> = Vec::new();
        // `export PATH=...`: assignments made by a declaration builtin.
        let mut declared: Vec<(String, Word)> = Vec::new();
        let prefix = simple.prefix.iter().flat_map(|p| p.0.iter());
        let suffix = simple.suffix.iter().flat_map(|s| s.0.iter());
        let name = simple.word_or_name.iter();
        let mut items: Vec<Item<'_>> = prefix.map(Item::Part).collect();
        items.extend(name.map(Item::Name));
        items.extend(suffix.map(Item::Part));
        for item in items {
            match item {
                Item::Name(word) => argv.push(self.word(&word.value, depth)),
                Item::Part(ast::CommandPrefixOrSuffixItem::Word(word)) => {
                    argv.push(self.word(&word.value, depth))
                }
                Item::Part(ast::CommandPrefixOrSuffixItem::IoRedirect(r)) => redirects.push(r),
                Item::Part(ast::CommandPrefixOrSuffixItem::AssignmentWord(assignment, _)) => {
                    let value = match &assignment.value {
                        ast::AssignmentValue::Scalar(w) => self.word(&w.value, depth),
                        ast::AssignmentValue::Array(items) => {
                            let mut last = Word::lit("");
                            for (key, value) in items {
                                if let Some(key) = key {
                                    self.word(&key.value, depth);
                                }
                                last = self.word(&value.value, depth);
                            }
                            last
                        }
                    };
                    let name = match &assignment.name {
                        ast::AssignmentName::VariableName(n) => n.clone(),
                        ast::AssignmentName::ArrayElementName(n, index) => {
                            self.arithmetic(index, depth);
                            n.clone()
                        }
                    };
                    if argv.is_empty() {
                        assignments.push((name, value));
                    } else {
                        // `export X=1`, `declare X=1`: an argument of the command.
                        let mut arg = value.clone();
                        let shift = name.len() + 1;
                        arg.text = format!("{name}={}", value.text);
                        arg.wild_at = value.wild_at.map(|at| at + shift);
                        argv.push(arg);
                        declared.push((name, value));
                    }
                }
                Item::Part(ast::CommandPrefixOrSuffixItem::ProcessSubstitution(_, sub)) => {
                    argv.push(self.process_substitution(sub, depth))
                }
            }
        }
        let cmd_index = if argv.is_empty() {
            None
        } else {
            Some(self.record(&argv))
        };
        for (name, value) in &assignments {
            super::rules::variables::assignment(self, cmd_index, name, value);
        }
        let program = argv.first().map(|w| super::words::program_name(&w.text));
        if program
            .as_deref()
            .is_some_and(|p| ["export", "declare", "typeset", "local", "readonly"].contains(&p))
        {
            for (name, value) in &declared {
                super::rules::variables::assignment(self, cmd_index, name, value);
            }
        }
        for redirect in redirects {
            self.redirect(redirect, cmd_index, depth, &mut stdin);
        }
        if let (Some(index), Some(program)) = (cmd_index, program) {
            if self.functions.contains(&program) {
                self.find(
                    Some(index),
                    Decision::Deny,
                    "destructive.fork_bomb",
                    format!("the function {program} calls itself (a fork bomb pattern)"),
                    false,
                );
            }
            super::rules::judge(self, index, &argv, depth, &stdin);
            if (program == "echo" || program == "printf") && argv.iter().all(Word::is_static) {
                let words: Vec<&str> = argv.iter().skip(1).map(|w| w.text.as_str()).collect();
                self.last_echo = echo_output(&program, &words);
            }
        }
    }

    fn process_substitution(&mut self, sub: &ast::SubshellCommand, depth: usize) -> Word {
        let before = self.network_reads;
        if self.enter(depth + 1) {
            let saved = self.cwd.clone();
            self.compound_list(&sub.list, depth + 1);
            self.cwd = saved;
        }
        Word {
            text: "/dev/fd/63".into(),
            wild_at: None,
            dynamic: false,
            from_network: self.network_reads > before,
        }
    }

    fn redirect(
        &mut self,
        redirect: &ast::IoRedirect,
        cmd: Option<usize>,
        depth: usize,
        stdin: &mut Stdin,
    ) {
        match redirect {
            ast::IoRedirect::File(fd, kind, target) => {
                let target = match target {
                    ast::IoFileRedirectTarget::Filename(word) => self.word(&word.value, depth),
                    ast::IoFileRedirectTarget::Fd(_) => return,
                    ast::IoFileRedirectTarget::Duplicate(word) => {
                        let w = self.word(&word.value, depth);
                        if w.is_static()
                            && (w.text == "-" || w.text.chars().all(|c| c.is_ascii_digit()))
                        {
                            return;
                        }
                        w
                    }
                    ast::IoFileRedirectTarget::ProcessSubstitution(_, sub) => {
                        self.process_substitution(sub, depth)
                    }
                };
                let reads_stdin = fd.is_none_or(|fd| fd == 0);
                match kind {
                    ast::IoFileRedirectKind::Read => {
                        super::rules::common::read_target(self, cmd, &target);
                        if reads_stdin {
                            stdin.text = None;
                            stdin.unknown = true;
                            stdin.network |= target.from_network;
                        }
                    }
                    ast::IoFileRedirectKind::DuplicateInput => {
                        super::rules::common::read_target(self, cmd, &target);
                    }
                    ast::IoFileRedirectKind::ReadAndWrite => {
                        super::rules::common::read_target(self, cmd, &target);
                        super::rules::common::write_target(self, cmd, &target);
                    }
                    ast::IoFileRedirectKind::Write
                    | ast::IoFileRedirectKind::Append
                    | ast::IoFileRedirectKind::Clobber
                    | ast::IoFileRedirectKind::DuplicateOutput => {
                        super::rules::common::write_target(self, cmd, &target);
                    }
                }
            }
            ast::IoRedirect::OutputAndError(word, _) => {
                let target = self.word(&word.value, depth);
                super::rules::common::write_target(self, cmd, &target);
            }
            ast::IoRedirect::HereDocument(fd, doc) => {
                let text = if doc.requires_expansion {
                    // Unquoted delimiter: the body is expanded, substitutions run.
                    let body = doc.doc.value.replace('"', "\\\"");
                    self.word(&format!("\"{body}\""), depth).text
                } else {
                    doc.doc.value.clone()
                };
                if fd.is_none_or(|fd| fd == 0) {
                    *stdin = Stdin {
                        text: Some(text),
                        unknown: false,
                        network: false,
                    };
                }
            }
            ast::IoRedirect::HereString(fd, word) => {
                let w = self.word(&word.value, depth);
                if fd.is_none_or(|fd| fd == 0) {
                    *stdin = Stdin {
                        text: w.is_static().then(|| w.text.clone()),
                        unknown: !w.is_static(),
                        network: w.from_network,
                    };
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------
    // Words.

    /// Resolves one shell word: quotes and escapes removed, substitutions judged (at
    /// `depth + 1`) and marked dynamic.
    pub fn word(&mut self, raw: &str, depth: usize) -> Word {
        let mut out = Word::lit("");
        if !raw.contains(['\'', '"', '\\', '$', '`', '~', '*', '?', '[', '{']) {
            out.text = raw.to_string();
            return out;
        }
        // More `$(` than `)` by far: the word parser backtracks over each (found by the
        // random-input test on a sed script that reached the shell grammar).
        let open_parens = raw
            .matches("$(")
            .count()
            .saturating_sub(raw.matches(')').count());
        if unclosed_expansion(raw) || open_parens > super::verdict::MAX_UNCLOSED_PARENS {
            // The word parser backtracks exponentially over unclosed `$(`, `$((` and `${`
            // (a here-document body is parsed here without the shell tokenizer in front),
            // and the shell would refuse such a word anyway.
            self.find(
                None,
                Decision::Approve,
                "input.unparseable",
                format!(
                    "the word {} has an unclosed substitution or expansion",
                    excerpt(raw)
                ),
                false,
            );
            return Word::unknown("");
        }
        match brush_parser::word::parse(raw, &super::syntax::parser_options()) {
            Ok(pieces) => {
                self.pieces(raw, &pieces, depth, false, &mut out);
                if !out.dynamic && brace_expansion(raw) {
                    // `{rm,-rf,/}` becomes three words when it runs.
                    self.mark_wild(&mut out, 0);
                    out.dynamic = true;
                }
            }
            Err(_) => {
                self.find(
                    None,
                    Decision::Approve,
                    "input.unparseable",
                    format!("the word {} could not be parsed", excerpt(raw)),
                    false,
                );
                out = Word::unknown("");
            }
        }
        out
    }

    fn mark_wild(&self, out: &mut Word, at: usize) {
        if out.wild_at.is_none_or(|w| at < w) {
            out.wild_at = Some(at);
        }
    }

    fn dynamic_piece(&self, out: &mut Word) {
        let at = out.text.len();
        self.mark_wild(out, at);
        out.text.push('*');
        out.dynamic = true;
    }

    fn pieces(
        &mut self,
        raw: &str,
        pieces: &[WordPieceWithSource],
        depth: usize,
        quoted: bool,
        out: &mut Word,
    ) {
        for piece in pieces {
            match &piece.piece {
                WordPiece::Text(text) => {
                    // `[` opens a bracket pattern only with a `]` after it in the word
                    // (`[ -d x ]` runs the program `[`; `['r']m` is a pattern).
                    let bracket = raw
                        .find('[')
                        .is_some_and(|open| raw.get(open + 1..).is_some_and(|r| r.contains(']')));
                    let glob = text.find(|c: char| c == '*' || c == '?' || (c == '[' && bracket));
                    if !quoted && let Some(pos) = glob {
                        let at = out.text.len() + pos;
                        self.mark_wild(out, at);
                    }
                    out.text.push_str(text);
                }
                WordPiece::SingleQuotedText(text) => out.text.push_str(text),
                WordPiece::AnsiCQuotedText(text) => match ansi_c(text) {
                    Some(decoded) => out.text.push_str(&decoded),
                    None => self.dynamic_piece(out),
                },
                WordPiece::DoubleQuotedSequence(inner)
                | WordPiece::GettextDoubleQuotedSequence(inner) => {
                    self.pieces(raw, inner, depth, true, out)
                }
                WordPiece::TildePrefix(user) => {
                    out.text.push('~');
                    out.text.push_str(user);
                }
                WordPiece::EscapeSequence(seq) => {
                    let literal = seq.strip_prefix('\\').unwrap_or(seq);
                    if quoted && !matches!(literal, "$" | "`" | "\"" | "\\" | "\n") {
                        out.text.push_str(seq);
                    } else if literal != "\n" {
                        out.text.push_str(literal);
                    }
                }
                WordPiece::ParameterExpansion(expr) => {
                    let source = raw.get(piece.start_index..piece.end_index).unwrap_or("");
                    if source.contains("$(")
                        || source.contains('`')
                        || source.contains("${") && source.matches("${").count() > 1
                    {
                        // Defaults, patterns and indexes may hold substitutions that run.
                        let inner = source
                            .strip_prefix("${")
                            .and_then(|s| s.strip_suffix('}'))
                            .unwrap_or(source);
                        if self.enter(depth + 1) {
                            let nested =
                                self.word(&format!("\"{}\"", inner.replace('"', "")), depth + 1);
                            out.from_network |= nested.from_network;
                        }
                    }
                    if let Some(name) = expanded_name(expr) {
                        super::environment::expansion(self, name);
                    }
                    match expr {
                        ParameterExpr::Parameter {
                            parameter: Parameter::Named(name),
                            indirect: false,
                        } if name == "HOME" && out.text.is_empty() => out.text.push('~'),
                        _ => self.dynamic_piece(out),
                    }
                }
                WordPiece::CommandSubstitution(code) => {
                    let network = self.program(code, depth + 1);
                    out.from_network |= network;
                    self.dynamic_piece(out);
                }
                WordPiece::BackquotedCommandSubstitution(code) => {
                    let code = unescape_backquoted(code);
                    let network = self.program(&code, depth + 1);
                    out.from_network |= network;
                    self.dynamic_piece(out);
                }
                WordPiece::ArithmeticExpression(expr) => {
                    self.arithmetic(&expr.value, depth + 1);
                    self.dynamic_piece(out);
                }
            }
        }
    }
}

/// The variable whose value a parameter expansion yields (`$X`, `${X:-y}`, `${#X}`).
fn expanded_name(expr: &ParameterExpr) -> Option<&str> {
    let parameter = match expr {
        ParameterExpr::Parameter { parameter, .. }
        | ParameterExpr::UseDefaultValues { parameter, .. }
        | ParameterExpr::AssignDefaultValues { parameter, .. }
        | ParameterExpr::UseAlternativeValue { parameter, .. }
        | ParameterExpr::IndicateErrorIfNullOrUnset { parameter, .. }
        | ParameterExpr::RemoveSmallestSuffixPattern { parameter, .. }
        | ParameterExpr::RemoveLargestSuffixPattern { parameter, .. }
        | ParameterExpr::RemoveSmallestPrefixPattern { parameter, .. }
        | ParameterExpr::RemoveLargestPrefixPattern { parameter, .. }
        | ParameterExpr::Substring { parameter, .. } => parameter,
        _ => return None,
    };
    match parameter {
        Parameter::Named(name) => Some(name),
        Parameter::NamedWithIndex { name, .. } | Parameter::NamedWithAllIndices { name, .. } => {
            Some(name)
        }
        _ => None,
    }
}

#[derive(Debug)]
enum Item<'a> {
    Name(&'a ast::Word),
    Part(&'a ast::CommandPrefixOrSuffixItem),
}

/// The code with every `$(echo WORDS)`, `` `echo WORDS` `` (and `printf`) whose words are
/// plain text replaced by those words; `None` when there is none. Words holding
/// expansions, operators, escapes or printf formats are left alone.
fn echo_resolved(code: &str) -> Option<String> {
    const OPENERS: &[(&str, char)] = &[
        ("$(echo ", ')'),
        ("$(printf ", ')'),
        ("`echo ", '`'),
        ("`printf ", '`'),
    ];
    if !code.contains("echo ") && !code.contains("printf ") {
        return None;
    }
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    let mut changed = false;
    loop {
        let next = OPENERS
            .iter()
            .filter_map(|(open, close)| rest.find(open).map(|at| (at, *open, *close)))
            .min_by_key(|(at, _, _)| *at);
        let Some((at, open, close)) = next else {
            break;
        };
        let inner_start = at + open.len();
        let after = rest.get(inner_start..).unwrap_or("");
        let plain = after.find(close).and_then(|end| {
            let words = after.get(..end)?;
            let special = ['$', '`', '(', ')', ';', '|', '&', '<', '>', '\n', '\\', '%'];
            (!words.contains(special)).then_some((words, end))
        });
        match plain {
            Some((words, end)) => {
                out.push_str(rest.get(..at).unwrap_or(""));
                let words = words.trim();
                let words = words
                    .strip_prefix("-n ")
                    .or_else(|| words.strip_prefix("-e "))
                    .unwrap_or(words);
                out.push_str(words);
                rest = after.get(end + close.len_utf8()..).unwrap_or("");
                changed = true;
            }
            None => {
                out.push_str(rest.get(..inner_start).unwrap_or(""));
                rest = after;
            }
        }
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// What `echo WORDS` or `printf FORMAT ARGS` prints, as code a shell after the pipe would
/// read. Escapes (`\x72\x6d`) are decoded at run time by `echo -e`, by `printf`, and by
/// the `echo` of some shells even without `-e`: for `echo` both the raw and the decoded
/// text are returned (one per line, both judged). `None` when the output is not known
/// (an escape this decoder does not know, `printf -v`).
fn echo_output(program: &str, words: &[&str]) -> Option<String> {
    if program == "echo" {
        let start = words
            .iter()
            .take_while(|w| {
                w.len() > 1 && w.starts_with('-') && w.chars().skip(1).all(|c| "neE".contains(c))
            })
            .count();
        let raw = words.get(start..).unwrap_or(&[]).join(" ");
        let decoded = ansi_c(&raw.replace("\\0", "\\"))?;
        return Some(if decoded == raw {
            raw
        } else {
            format!("{raw}\n{decoded}")
        });
    }
    let mut rest = words;
    if rest.first() == Some(&"--") {
        rest = rest.get(1..).unwrap_or(&[]);
    }
    let (format, args) = rest.split_first()?;
    if format.starts_with('-') {
        return None;
    }
    let format = ansi_c(format)?;
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('b') => out.push_str(&ansi_c(args.next().copied().unwrap_or(""))?),
            Some(_) => out.push_str(args.next().copied().unwrap_or("")),
            None => out.push('%'),
        }
    }
    Some(out)
}

/// Whether a `$(`, `$((` or `${` in the word is never closed. Quoting is followed as far
/// as it matters here: backslash escapes, single quotes outside double quotes (`'$('` is
/// text), double quotes (a `)` inside them closes nothing), and a fresh quoting context
/// inside `$(...)`. Closers that do not match the innermost opener are text, so this says
/// "unclosed" only when an opener is left at the end.
fn unclosed_expansion(raw: &str) -> bool {
    // Each opener: its closer and whether the text around it was double-quoted.
    let mut open: Vec<(char, bool)> = Vec::new();
    // `(` left open inside `${...}` (a pattern such as `${x/(((/y}`): the word parser
    // backtracks over those too, so more than a few count as unclosed.
    let mut parens_in_braces = 0usize;
    let mut in_double = false;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '\'' if !in_double => {
                // Text up to the closing quote; an unclosed one ends the word.
                let closed = chars.by_ref().any(|q| q == '\'');
                if !closed {
                    break;
                }
            }
            '"' => in_double = !in_double,
            '$' => match chars.peek() {
                Some('(') => {
                    chars.next();
                    open.push((')', in_double));
                    in_double = false;
                }
                Some('{') => {
                    chars.next();
                    open.push(('}', in_double));
                }
                _ => {}
            },
            '(' if !in_double && open.last().is_some_and(|(close, _)| *close == ')') => {
                open.push((')', false));
            }
            '(' if open.last().is_some_and(|(close, _)| *close == '}') => {
                parens_in_braces += 1;
                if parens_in_braces > super::verdict::MAX_UNCLOSED_PARENS {
                    return true;
                }
            }
            ')' if open.last().is_some_and(|(close, _)| *close == '}') => {
                parens_in_braces = parens_in_braces.saturating_sub(1);
            }
            ')' if !in_double => {
                if let Some(&(')', outer)) = open.last() {
                    open.pop();
                    in_double = outer;
                }
            }
            '}' => {
                if let Some(&('}', outer)) = open.last()
                    && outer == in_double
                {
                    open.pop();
                }
            }
            _ => {}
        }
    }
    !open.is_empty()
}

/// Inside backquotes, `\\`, `` \` `` and `\$` stand for the character itself.
fn unescape_backquoted(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&next) = chars.peek()
            && matches!(next, '\\' | '`' | '$')
        {
            out.push(next);
            chars.next();
            continue;
        }
        out.push(c);
    }
    out
}

/// Whether an unquoted brace expansion (`{a,b}` or `{1..3}`) is in the raw word.
fn brace_expansion(raw: &str) -> bool {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut open: Option<usize> = None;
    for (i, c) in raw.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (_, '\\') if quote != Some('\'') => escaped = true,
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '{') => open = Some(i),
            (None, '}') => {
                if let Some(start) = open
                    && let Some(inner) = raw.get(start + 1..i)
                    && (inner.contains(',') || inner.contains(".."))
                    && !(start > 0 && raw.get(start - 1..start) == Some("$"))
                {
                    return true;
                }
                open = None;
            }
            _ => {}
        }
    }
    false
}

/// Decodes the inside of `$'...'`; `None` for escapes it does not know (the word is then
/// treated as unknown rather than guessed).
fn ansi_c(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next()?;
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'e' | 'E' => out.push('\u{1b}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '\\' | '\'' | '"' | '?' => out.push(e),
            'x' | 'u' | 'U' => {
                let max = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut value = 0u32;
                let mut n = 0;
                while n < max
                    && let Some(d) = chars.peek().and_then(|c| c.to_digit(16))
                {
                    value = value * 16 + d;
                    chars.next();
                    n += 1;
                }
                if n == 0 {
                    return None;
                }
                out.push(char::from_u32(value)?);
            }
            '0'..='7' => {
                let mut value = e.to_digit(8)?;
                let mut n = 1;
                while n < 3
                    && let Some(d) = chars.peek().and_then(|c| c.to_digit(8))
                {
                    value = value * 8 + d;
                    chars.next();
                    n += 1;
                }
                out.push(char::from_u32(value)?);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The recursion of the rules: shell code a command runs (`sh -c`, `eval`, `su -c`)
/// is handed back to the walk, one level deeper.
impl Analyzer<'_> {
    /// Judges a word as shell code (the argument of `sh -c`, `su -c`, `trap`).
    pub(crate) fn code_word(&mut self, index: usize, code: &Word, depth: usize) {
        if !code.is_static() {
            let network = code.from_network;
            self.find_dynamic_code(
                Some(index),
                network,
                "obfuscation.dynamic_code",
                "runs shell code that is only known when the line runs",
            );
        }
        self.code_string(index, &code.text, depth, code.from_network);
    }

    pub(crate) fn code_string(&mut self, index: usize, code: &str, depth: usize, network: bool) {
        if network {
            self.find(
                Some(index),
                Decision::Deny,
                "network.exec_remote",
                "runs code read from the network",
                false,
            );
        }
        self.program(code, depth + 1);
    }
}
