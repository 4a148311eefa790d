"""What goes out to people: the weekly and tertial lägesbild (content: what a report shows for
an audience; texts: what the analysts write in it; maps: its SVG drawings; words: its Swedish;
render: HTML and PDF; mailing: Monday's mail) and the backtest charts."""
