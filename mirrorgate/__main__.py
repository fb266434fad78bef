from mirrorgate.cli import main

raise SystemExit(main())
