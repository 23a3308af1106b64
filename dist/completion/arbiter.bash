# bash completion for arbiter(1): its commands, their verbs and their
# options, read from the tool's own --help (`arbiter --help`, `arbiter
# COMMAND --help`, `arbiter COMMAND VERB --help`), so that it never drifts
# from the tool. An option's value, and any other argument, completes as a
# file name (complete -o default).
#
# The same parser is in _arbiter, zsh's completion: keep them alike.

# Reads a help text on stdin; prints "cmd NAME" for each command of the
# tool's help, "verb NAME" for each verb of command $1's usage lines, and
# "opt NAME 0|1" for each option (1: it takes a value).
_arbiter_parse()
{
    awk -v cmd="$1" '
        function opt(line, only_first,    o, c1, c2) {
            while (match(line, /(^|[ [|])(--[a-z][a-z0-9-]*|-[a-zA-Z])/)) {
                o = substr(line, RSTART, RLENGTH)
                sub(/^[ [|]/, "", o)
                c1 = substr(line, RSTART + RLENGTH, 1)
                c2 = substr(line, RSTART + RLENGTH + 1, 1)
                line = substr(line, RSTART + RLENGTH)
                if (c1 != "" && c1 !~ /[] ,|]/)
                    continue
                print "opt " o " " ((c1 == " " && c2 ~ /[A-Za-z_]/) ? 1 : 0)
                if (only_first && c1 != ",")
                    return
            }
        }
        NR == 1 { usage = 1 }
        usage && /^$/ { usage = 0 }
        usage {
            s = $0
            opt(s, 0)
            # "arbiter queue pause Q | resume Q", "arbiter schedule remove|pause NAME"
            if (cmd != "" && sub(/^(usage:)? *arbiter /, "", s) && index(s, cmd " ") == 1) {
                n = split(substr(s, length(cmd) + 2), parts, / \| /)
                for (i = 1; i <= n; i++) {
                    w = parts[i]
                    sub(/ .*/, "", w)
                    m = split(w, names, /\|/)
                    for (j = 1; j <= m; j++)
                        if (names[j] ~ /^[a-z]+$/ && !seen[names[j]]++)
                            print "verb " names[j]
                }
            }
            next
        }
        /^Commands/ { commands = 1; next }
        commands && /^$/ { commands = 0 }
        commands && /^  [a-z]+ / { print "cmd " $1; next }
        # an option line (deeper: a wrapped sentence); mawk has no {1,6}
        match($0, /^ +-/) && RLENGTH <= 7 { opt($0, 1) }
    '
}

_arbiter()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=
    local top cmd= verb= help line
    local -a verbs=() words=()
    local -A takes=()
    top=$("${COMP_WORDS[0]}" --help 2>/dev/null | _arbiter_parse "")
    while read -r kind name value; do
        [ "$kind" = opt ] && takes[$name]=$value
    done <<< "$top"
    # the command and verb typed so far; options and their values skipped
    local i w skip=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if [ $skip = 1 ]; then
            skip=0
            continue
        fi
        case $w in
            --*=*) ;;
            -*) [ "${takes[$w]:-0}" = 1 ] && skip=1 ;;
            *)
                if [ -z "$cmd" ]; then
                    cmd=$w
                    help=$("${COMP_WORDS[0]}" "$cmd" --help 2>/dev/null | _arbiter_parse "$cmd")
                    while read -r kind name value; do
                        [ "$kind" = verb ] && verbs+=("$name")
                    done <<< "$help"
                    # a command with verbs: the verb's options, once it is known
                    if [ ${#verbs[@]} -eq 0 ]; then
                        while read -r kind name value; do
                            [ "$kind" = opt ] && takes[$name]=$value
                        done <<< "$help"
                    fi
                elif [ -z "$verb" ] && [ ${#verbs[@]} -gt 0 ]; then
                    verb=$w
                    help=$("${COMP_WORDS[0]}" "$cmd" "$verb" --help 2>/dev/null |
                        _arbiter_parse "$cmd")
                    while read -r kind name value; do
                        [ "$kind" = opt ] && takes[$name]=$value
                    done <<< "$help"
                fi
                ;;
        esac
    done
    COMPREPLY=()
    if [ $skip = 1 ]; then
        return 0  # an option's value: a file name, or anything
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "${!takes[*]}" -- "$cur"))
    elif [ -z "$cmd" ]; then
        COMPREPLY=($(compgen -W "$(sed -n 's/^cmd //p' <<< "$top")" -- "$cur"))
    elif [ -z "$verb" ] && [ ${#verbs[@]} -gt 0 ]; then
        COMPREPLY=($(compgen -W "${verbs[*]}" -- "$cur"))
    fi
    return 0
}

complete -o default -F _arbiter arbiter
