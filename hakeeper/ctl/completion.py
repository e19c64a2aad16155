"""`hakeeperctl completion bash`: the bash completion script (also shipped as
completion/hakeeperctl.bash; a unit test keeps the two equal).

Object names come live from the running daemon through `hakeeperctl show ... -o json`, with
the same --bus as the line being completed, quietly (nothing is offered when it is down).
"""

from __future__ import annotations

BASH = r"""# bash completion for hakeeperctl(1)                        -*- shell-script -*-
# Printed by `hakeeperctl completion bash`. Instance, group and server names are asked of the
# running hakeeper (`hakeeperctl show ... -o json`), on the bus the command line names.

# The "Name" of every row a `show` prints as JSON (hakeeper's names hold no quote).
_hakeeperctl_names()
{
    "$@" -o json 2>/dev/null | grep -o '"Name": *"[^"\\]*"' | sed 's/^"Name": *"//; s/"$//'
}

_hakeeperctl()
{
    local line=${COMP_LINE:0:COMP_POINT} cur="" prev="" cmd="" i word pre="" brk=""
    local -a w=() args=() bus=() show=() words=()
    # split on blanks only: a ':' in a server name does not start a new argument
    read -ra w <<< "$line"
    if [[ $line != *[[:space:]] ]]; then
        cur=${w[-1]}
        unset 'w[-1]'
    fi
    (( ${#w[@]} )) || return 0
    prev=${w[-1]}
    for ((i = 1; i < ${#w[@]}; i++)); do
        case ${w[i]} in
            --bus) bus=(--bus "${w[i+1]}"); ((i++)) ;;
            --bus=*) bus=("${w[i]}") ;;
            -o | --output | --timeout | --count) ((i++)) ;;
            -*) ;;
            *) if [[ -z $cmd ]]; then cmd=${w[i]}; else args+=("${w[i]}"); fi ;;
        esac
    done
    # `show` on the same bus as the line: "${show[@]}" instances | groups | ...
    show=(_hakeeperctl_names "${w[0]}" "${bus[@]}" show)

    case $prev in
        --bus) words=(system session) ;;
        -o | --output) words=(table json) ;;
        --timeout | --count) return 0 ;;
        *)
            if [[ $cur == --bus=* ]]; then
                words=(--bus=system --bus=session)
            elif [[ $cur == -* ]]; then
                words=(--bus --output --timeout --help)
                case $cmd in
                    watch) words+=(--count) ;;
                    failover) words+=(--group) ;;
                    weight) words+=(--reset) ;;
                    reload) words+=(--check) ;;
                esac
            elif [[ -z $cmd ]]; then
                words=(show status watch set-priority reset-priority failover maintenance
                       garp drain enable weight reload dump genhash completion)
            else
                case $cmd:${#args[@]} in
                    show:0) words=(instances groups virtual-servers real-servers) ;;
                    show:1)
                        case ${args[0]} in
                            instances | groups | virtual-servers)
                                mapfile -t words < <("${show[@]}" "${args[0]}") ;;
                            real-servers)
                                mapfile -t words < <("${show[@]}" virtual-servers) ;;
                        esac ;;
                    show:2)
                        [[ ${args[0]} == real-servers ]] &&
                            mapfile -t words < <("${show[@]}" real-servers "${args[1]}") ;;
                    set-priority:0 | reset-priority:0 | garp:0 | maintenance:1)
                        mapfile -t words < <("${show[@]}" instances) ;;
                    failover:0)
                        if [[ " ${w[*]} " == *" --group "* ]]; then
                            mapfile -t words < <("${show[@]}" groups)
                        else
                            mapfile -t words < <("${show[@]}" instances)
                        fi ;;
                    maintenance:0) words=(on off) ;;
                    drain:0 | enable:0 | weight:0)
                        mapfile -t words < <("${show[@]}" virtual-servers) ;;
                    drain:1 | enable:1 | weight:1)
                        mapfile -t words < <("${show[@]}" real-servers "${args[0]}") ;;
                    completion:0) words=(bash) ;;
                esac
            fi ;;
    esac

    # readline replaces only what follows the last ':' or '=' (COMP_WORDBREAKS): drop the
    # part of each candidate before it, as bash-completion's __ltrim_colon_completions does
    [[ $COMP_WORDBREAKS == *:* ]] && brk+=:
    [[ $COMP_WORDBREAKS == *=* ]] && brk+==
    [[ -n $brk && $cur == *["$brk"]* ]] && pre=${cur%"${cur##*["$brk"]}"}
    COMPREPLY=()
    for word in "${words[@]}"; do
        [[ $word == "$cur"* ]] && COMPREPLY+=("${word#"$pre"}")
    done
    return 0
}

complete -F _hakeeperctl hakeeperctl
"""


def bash_script() -> str:
    return BASH
