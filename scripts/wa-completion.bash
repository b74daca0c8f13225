# bash completion for wa-normalize, wa-send, wa-broadcast and wa-migrate.
# Options and subcommands are read from the program's own --help (after a
# subcommand, from "PROGRAM SUBCOMMAND --help"), so the completion can
# never drift from what the program accepts.

_wa_complete() {
	local cur prev cmd help opts subs w
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD-1]}
	cmd=${COMP_WORDS[0]}

	case $prev in
	--config|--dir|--log|--port-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	--provider) COMPREPLY=($(compgen -W 'baileys meta' -- "$cur")); return ;;
	--context) COMPREPLY=($(compgen -W 'chat lead broadcast' -- "$cur")); return ;;
	--format) COMPREPLY=($(compgen -W 'jsonl csv' -- "$cur")); return ;;
	--status) COMPREPLY=($(compgen -W 'sent failed cancelled queued processing' -- "$cur")); return ;;
	--class) COMPREPLY=($(compgen -W 'ambiguous retryable permanent fatal' -- "$cur")); return ;;
	# The zones of the system's database, as --tz takes them.
	--tz) COMPREPLY=($(cd "${TZDIR:-/usr/share/zoneinfo}" 2>/dev/null &&
		find [A-Z]* -type f -path "$cur*" 2>/dev/null | grep -v -e '\.' -e '^posix' -e '^right')); return ;;
	--skip-days) COMPREPLY=($(compgen -W 'fri-sat sat sat,sun sun fri' -- "$cur")); return ;;
	esac

	help=$("$cmd" --help 2>/dev/null) || return
	opts=$(grep -oE -- '(^|[ ,])--[a-z][a-z0-9-]*' <<<"$help" | tr -d ' ,' | sort -u)
	# Subcommands: the word after the program in "Usage:", "or:" and indented
	# synopsis lines, and the first word of each line under "Commands:".
	subs=$( {
		sed -nE "s/^(Usage: +| +or: +| +)${cmd##*/}( \[OPTION\]\.\.\.)? \[?([a-z]+)\]?( .*)?$/\3/p" <<<"$help"
		awk '/^Commands:/ { c = 1; next } c && /^$/ { c = 0 } c && /^  [a-z]/ { print $1 }' <<<"$help"
	} | sort -u)

	# After a subcommand, only its options (its own --help lists them).
	for w in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
		if [[ $w != -* ]] && grep -qx -- "$w" <<<"$subs"; then
			help=$("$cmd" "$w" --help 2>/dev/null) &&
				opts=$(grep -oE -- '(^|[ ,])--[a-z][a-z0-9-]*' <<<"$help" | tr -d ' ,' | sort -u)
			break
		fi
	done

	# Right after a subcommand whose synopsis names its operations
	# ("optout add|remove|import|list ..."): those.
	if [[ $cur != -* && $COMP_CWORD -ge 2 ]] && grep -qx -- "$prev" <<<"$subs"; then
		w=$(sed -nE "s/^Usage: +${cmd##*/} \[OPTION\]\.\.\. $prev ([a-z]+(\|[a-z]+)+)( .*)?$/\1/p" <<<"$help")
		if [ -n "$w" ]; then
			COMPREPLY=($(compgen -W "${w//|/ }" -- "$cur"))
			return
		fi
	fi

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	elif [[ $COMP_CWORD -eq 1 && -n $subs ]]; then
		COMPREPLY=($(compgen -W "$subs" -- "$cur") $(compgen -f -- "$cur"))
	else
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
}
complete -F _wa_complete wa-normalize wa-send wa-broadcast wa-migrate
