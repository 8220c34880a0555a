# Shortcuts for those who have make; ./dev is the real entry point and needs nothing installed.
.PHONY: run test lint createuser createorg
run:
	./dev run
test:
	./dev test
lint:
	./dev lint
createuser:
	./dev createuser "$(USERNAME)" "$(PASSWORD)" $(if $(EMAIL),--email "$(EMAIL)") $(if $(filter 1 true yes,$(STAFF)),--staff)
createorg:
	./dev createorg "$(NAME)" --owner "$(OWNER)" $(if $(EMAIL),--email "$(EMAIL)")
