from asgilab.cli import main

raise SystemExit(main())
