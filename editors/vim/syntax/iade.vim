" Vim syntax file
" Language:   iade (declarative infrastructure language)
" Filenames:  *.iade
" Grammar:    grammar/iade.ebnf is normative; keep this file in step with it.

if exists('b:current_syntax')
  finish
endif

let s:cpo_save = &cpo
set cpo&vim

syn case match

" Multi-line strings can be long; highlight from the start of the file.
syn sync fromstart

" --- Comments -------------------------------------------------------------
syn keyword iadeTodo contained TODO FIXME XXX NOTE
syn match   iadeComment    "#.*$" contains=iadeTodo,@Spell
" Defined after iadeComment, so it wins where both start: any "##" comment.
syn match   iadeDocComment "##.*$" contains=iadeTodo,@Spell

" --- Keywords (reserved) ----------------------------------------------------
syn keyword iadeImport      use as
syn keyword iadeConditional if then else
syn keyword iadeRepeat      for in
syn keyword iadeStatement   require where
syn keyword iadeOperatorWord and or not
syn keyword iadeBoolean     true false
syn keyword iadeNull        null

" Declarations and the name they introduce.
syn keyword iadeDeclaration param let nextgroup=iadeVarName skipwhite
syn keyword iadeDeclaration kind      nextgroup=iadeKindName skipwhite
syn keyword iadeDeclaration rule policy nextgroup=iadeFuncName skipwhite
syn keyword iadeDeclaration control   nextgroup=iadeFuncName,iadeControlId skipwhite
syn match   iadeVarName  "\h\w*" contained
syn match   iadeKindName "\h\w*" contained
syn match   iadeFuncName "\h\w*" contained
syn region  iadeControlId start=+"+ skip=+\\\\\|\\"+ end=+"+ end=+$+ contained oneline

" --- Numbers ----------------------------------------------------------------
" A digit followed by identifier characters is one token; anything that is not
" a well-formed integer (0o8, 0x, 12abc, 1_) is an error. Valid forms are
" defined later and so take priority.
syn match   iadeNumberError "\<\d\w*"
syn match   iadeNumber      "\<\d\%(_\=\d\)*\>"
syn match   iadeNumber      "\<0x\x\%(_\=\x\)*\>"
syn match   iadeNumber      "\<0o\o\%(_\=\o\)*\>"
syn match   iadeNumber      "\<0b[01]\%(_\=[01]\)*\>"
" No floating point.
syn match   iadeFloatError  "\<\d[0-9_]*\.\d\w*"

" --- Strings ----------------------------------------------------------------
syn match   iadeEscapeError +\\.\=+ contained
syn match   iadeEscape      +\\\%([\\"nrt0$]\|u{\x\{1,6}}\)+ contained
syn match   iadeDollarLit   +\$\${+ contained
syn region  iadeInterp matchgroup=iadeInterpDelim start=+\${+ end=+}+ contained
      \ contains=@iadeExpr,iadeInterpBraces
" Braces inside an interpolation (a record literal) must not end it.
syn region  iadeInterpBraces start=+{+ end=+}+ contained transparent
      \ contains=@iadeExpr,iadeInterpBraces

syn cluster iadeStringParts contains=iadeEscape,iadeEscapeError,iadeDollarLit,iadeInterp
syn region  iadeString matchgroup=iadeStringDelim start=+"+ skip=+\\\\\|\\"+ end=+"+ end=+$+
      \ contains=@iadeStringParts
" Defined after iadeString, so '"""' starts a multi-line string.
syn region  iadeMLString matchgroup=iadeStringDelim start=+"""+ skip=+\\"+ end=+"""+
      \ contains=@iadeStringParts

" --- Operators, calls, entries ---------------------------------------------
syn match   iadeOperator "==\|!=\|<=\|>=\|[<>+\-*/%&|^?=]"
syn match   iadeFunctionCall "\<\h\w*\ze\s*("
syn match   iadeBuiltin
      \ "\<\%(intent\|observe\|secret\|include\|len\|join\|upper\|lower\|basename\|dirname\|contains\|keys\)\ze\s*("
" name = expr (an entry, a record field or a named argument).
syn match   iadeKey "\<\h\w*\ze\s*=\%(=\)\@!"
" Meta-attributes, reserved in every resource body.
syn match   iadeMetaAttr "\<\%(after\|manage\|provider\)\ze\s*=\%(=\)\@!"
" Enum values of manage and severity.
syn match   iadeEnumValue
      \ "\%(\<\%(manage\|severity\)\s*=\s*\)\@<=\<\%(enforce\|observe\|low\|medium\|high\|critical\|deny\|warn\)\>"

syn cluster iadeExpr contains=iadeString,iadeMLString,iadeNumber,iadeNumberError,iadeFloatError,
      \iadeConditional,iadeRepeat,iadeStatement,iadeOperatorWord,iadeBoolean,iadeNull,
      \iadeOperator,iadeFunctionCall,iadeBuiltin,iadeKey,iadeComment

" --- Heads of declarations -------------------------------------------------
let s:kw = '\%(\<\%(use\|as\|param\|let\|kind\|rule\|policy\|control\|require\|for\|in\|if\|then\|else\|where\|and\|or\|not\|true\|false\|null\)\>\)\@!'

" KIND NAME {  and  KIND "name" {  at the start of a line or after { or }.
execute 'syn match iadeResourceKind +\%(^\|[{}]\)\s*\zs' . s:kw
      \ . '\h\w*\%(\.\h\w*\)*\ze\s\+\%(' . s:kw . '\h\w*\s*{\|"\)+'
      \ . ' nextgroup=iadeResourceName,iadeString skipwhite'
syn match   iadeResourceName "\h\w*\ze\s*{" contained

" provider TYPE NAME {
syn match   iadeProviderDecl +\%(^\|[{}]\)\s*\zs\<provider\>\ze\s\+\h\w*\s\+\h\w*\s*{+
      \ nextgroup=iadeProviderType skipwhite
syn match   iadeProviderType "\h\w*" contained nextgroup=iadeProviderName skipwhite
syn match   iadeProviderName "\h\w*" contained

" identity / desired / observed NAME: TYPE  (kind bodies)
syn match   iadeRole +\%(^\|[{,]\)\s*\zs\<\%(identity\|desired\|observed\)\>\ze\s\+\h\w*\s*:+
      \ nextgroup=iadeFieldName skipwhite
syn match   iadeFieldName "\h\w*" contained

" --- Types (after ':') -------------------------------------------------------
syn keyword iadeTypeBuiltin contained bool int string path mode secret any
syn match   iadeTypeName "\h\w*\%(\.\h\w*\)*" contained
syn match   iadeTypeOperator "[|?]" contained
syn region  iadeTypeEnum matchgroup=iadeTypeCtor start="\<enum\s*(" end=")" contained
      \ contains=iadeEnumMember,iadeComment
syn match   iadeEnumMember "\h\w*" contained
syn region  iadeTypeApply matchgroup=iadeTypeCtor start="\<\%(list\|map\)\s*(" end=")" contained
      \ contains=@iadeTypeParts
syn region  iadeTypeRecord matchgroup=iadeTypeDelim start="{" end="}" contained
      \ contains=iadeTypeAnnot,iadeString,iadeComment
syn cluster iadeTypeParts contains=iadeTypeName,iadeTypeBuiltin,iadeTypeOperator,iadeTypeEnum,
      \iadeTypeApply,iadeTypeRecord,iadeString,iadeNumber,iadeComment
" A type ends before = , ) } ] # or where, or at the end of the line.
syn region  iadeTypeAnnot matchgroup=iadeOperator start=":"
      \ end=+\%([=,)}\]#]\|\<where\>\)\@=+ end=+$+
      \ contains=@iadeTypeParts

let b:current_syntax = 'iade'

" --- Highlight links ----------------------------------------------------------
hi def link iadeTodo          Todo
hi def link iadeComment       Comment
hi def link iadeDocComment    SpecialComment
hi def link iadeImport        Include
hi def link iadeConditional   Conditional
hi def link iadeRepeat        Repeat
hi def link iadeStatement     Statement
hi def link iadeOperatorWord  Operator
hi def link iadeBoolean       Boolean
hi def link iadeNull          Constant
hi def link iadeDeclaration   Keyword
hi def link iadeVarName       Identifier
hi def link iadeKindName      Type
hi def link iadeFuncName      Function
hi def link iadeControlId     Function
hi def link iadeNumber        Number
hi def link iadeNumberError   Error
hi def link iadeFloatError    Error
hi def link iadeString        String
hi def link iadeMLString      String
hi def link iadeStringDelim   String
hi def link iadeEscape        SpecialChar
hi def link iadeEscapeError   Error
hi def link iadeDollarLit     SpecialChar
hi def link iadeInterpDelim   Delimiter
hi def link iadeOperator      Operator
hi def link iadeFunctionCall  Function
hi def link iadeBuiltin       Function
hi def link iadeKey           Identifier
hi def link iadeMetaAttr      Special
hi def link iadeEnumValue     Constant
hi def link iadeResourceKind  Type
hi def link iadeResourceName  Function
hi def link iadeProviderDecl  Keyword
hi def link iadeProviderType  Type
hi def link iadeProviderName  Function
hi def link iadeRole          StorageClass
hi def link iadeFieldName     Identifier
hi def link iadeTypeBuiltin   Type
hi def link iadeTypeName      Type
hi def link iadeTypeOperator  Operator
hi def link iadeTypeCtor      Type
hi def link iadeTypeDelim     Delimiter
hi def link iadeEnumMember    Constant

let &cpo = s:cpo_save
unlet s:cpo_save s:kw
